"""Classification Accuracy Score (Ravuri & Vinyals 2019): train a fresh classifier on
generated (image, label) pairs only and report its accuracy on real test data, beside the
same classifier trained on real data."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from zoo import data
from zoo.metrics.core import check_labels
from zoo.metrics.extractors import check_images


def _train_and_test(train_x, train_y, test_x, test_y, num_classes, epochs, batch_size, seed):
    from zoo.models.classifier import Classifier, ClassifierConfig
    from zoo.trainer import Trainer

    keras.utils.set_random_seed(seed)
    model = Classifier(ClassifierConfig(image_shape=train_x.shape[1:], num_classes=num_classes,
                                        augment=False, seed=seed), name="cas_classifier")
    model.compile_default(1e-3)
    trainer = Trainer(model, tf.distribute.get_strategy())
    ds = data.pipeline(tf.data.Dataset.from_tensor_slices((train_x, train_y)), batch_size, shuffle=True,
                       seed=seed, drop_remainder=True, repeat=True)
    trainer.fit(ds, epochs=epochs, steps_per_epoch=max(1, len(train_x) // batch_size), verbose=0)
    return model.evaluate_arrays(test_x, test_y)["accuracy"]


def classification_accuracy_score(fake_images, fake_labels, real_images, real_labels, test_images, test_labels,
                                  num_classes, epochs=10, batch_size=64, seed=0):
    """{"cas": accuracy on real test data of a classifier trained on generated data,
    "real_data_accuracy": the same classifier and budget trained on real data}."""
    fake_images, real_images = check_images(fake_images, "generated images"), check_images(real_images, "real images")
    test_images = check_images(test_images, "test images")
    fake_labels = check_labels(fake_labels, num_classes, "generated labels").astype(np.int32)
    real_labels = check_labels(real_labels, num_classes, "real labels").astype(np.int32)
    test_labels = check_labels(test_labels, num_classes, "test labels").astype(np.int32)
    return {
        "cas": _train_and_test(fake_images, fake_labels, test_images, test_labels, num_classes, epochs, batch_size, seed),
        "real_data_accuracy": _train_and_test(real_images, real_labels, test_images, test_labels, num_classes,
                                              epochs, batch_size, seed),
    }


def generated_cas(model, test_images, test_labels, train, epochs=10, seed=10_000):
    """CAS of a conditional model: as many samples as ``train`` has images, with its labels."""
    if train is None:
        return {}
    train_images, train_labels = train
    fake = model.evaluation_samples(len(train_labels), train_labels, seed=seed)
    return classification_accuracy_score(fake, train_labels, train_images, train_labels, test_images, test_labels,
                                         int(model.config.num_classes), epochs=epochs)
