"""Classification Accuracy Score (Ravuri & Vinyals 2019): train a fresh classifier on
generated (image, label) pairs only and report its accuracy on real test data, beside the
same classifier and budget trained on real data."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from zoo.blocks import nets
from zoo.core import data
from zoo.metrics.core import check_labels
from zoo.metrics.extractors import check_images

# How ``train_and_test`` trains, in the cache key of the real-data CAS (a change of loop moves it)
LOOP = "each epoch's shuffled batches drawn, then a train_on_batch step per batch"


def train_and_test(train_x, train_y, test_x, test_y, num_classes, epochs=10, batch_size=64, seed=0):
    """Accuracy on (test_x, test_y) of a ``nets.classifier`` trained on (train_x, train_y)
    with Adam (lr 1e-3) for ``epochs`` epochs of shuffled batches."""
    keras.utils.set_random_seed(seed)
    network = nets.classifier(train_x.shape[1:], num_classes, name="cas_classifier")
    model = keras.Model(network.input, network.output["logits"])
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    batch_size = min(batch_size, len(train_x))  # a few samples: still at least one batch per epoch
    ds = data.pipeline(tf.data.Dataset.from_tensor_slices((train_x, train_y)), batch_size, shuffle=True,
                       seed=seed, drop_remainder=True)
    # Each epoch's batches are drawn before its steps, a step per batch: ``fit`` took 20.4 s for
    # 40 epochs over 1,000 images, this 13.8 s (its per-epoch work and prefetch beside the steps
    # on 2 cores; bench/results/evaluation_speed.json)
    for _ in range(epochs):
        for images, labels in list(ds):
            model.train_on_batch(images, labels)
    logits = model.predict(test_x, batch_size=500, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == test_y))


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
        "cas": train_and_test(fake_images, fake_labels, test_images, test_labels, num_classes, epochs, batch_size, seed),
        "real_data_accuracy": train_and_test(real_images, real_labels, test_images, test_labels, num_classes,
                                             epochs, batch_size, seed),
    }
