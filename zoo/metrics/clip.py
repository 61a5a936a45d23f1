"""CLIP score (Hessel et al. 2021): 100 · max(cos(image embedding, text embedding), 0),
averaged over (image, caption) pairs, with pluggable encoders."""

from __future__ import annotations

import numpy as np

from zoo.core.errors import ZooError
from zoo.metrics.core import clip_score
from zoo.metrics.extractors import check_images


class CLIPScorer:
    def __init__(self, image_encoder, text_encoder, name="clip"):
        """``image_encoder``: images (float32 NHWC in [0, 1]) → [N, D]; ``text_encoder``:
        list of strings → [N, D]."""
        self.image_encoder, self.text_encoder, self.name = image_encoder, text_encoder, name

    def __call__(self, images, captions):
        images = check_images(images)
        if len(images) != len(captions):
            raise ZooError(f"{len(images)} images but {len(captions)} captions; CLIP score pairs them")
        return clip_score(np.asarray(self.image_encoder(images)), np.asarray(self.text_encoder(list(captions))))

    @classmethod
    def from_keras_hub(cls, preset="clip_vit_base_patch32"):
        """A keras-hub CLIP preset, from the local cache or a local preset folder."""
        try:
            import keras_hub
        except ImportError:
            raise ZooError("CLIP score with a pretrained CLIP needs keras-hub (`pip install keras-hub`) "
                           f"and the {preset!r} preset on disk") from None
        try:
            backbone = keras_hub.models.CLIPBackbone.from_preset(preset)
            preprocessor = keras_hub.models.CLIPPreprocessor.from_preset(preset)
        except Exception as e:  # noqa: BLE001 - the preset is absent or unreadable
            raise ZooError(f"could not load the CLIP preset {preset!r} ({str(e).splitlines()[0][:160]}); "
                           "download it where there is network, then pass its local folder") from None
        size = backbone.vision_encoder.image_shape[0] if hasattr(backbone.vision_encoder, "image_shape") else 224

        def images(x):
            import tensorflow as tf

            x = tf.image.resize(tf.image.grayscale_to_rgb(x) if x.shape[-1] == 1 else x, (size, size))
            return backbone.get_vision_embeddings(preprocessor.image_converter(x * 255.0))

        def texts(captions):
            return backbone.get_text_embeddings(preprocessor.tokenizer(captions))

        return cls(images, texts, name=f"clip_{preset}")
