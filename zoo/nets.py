"""Shared network building blocks. Each returns a plain Keras model, so it round-trips
through ``get_config`` and can be reused by any task (VAE, AE, GAN, ...)."""

from __future__ import annotations

import keras
from keras import layers

from zoo import ZooError


def _check_downsampling(image_shape, times):
    height, width, _ = image_shape
    factor = 2**times
    if height % factor or width % factor:
        raise ZooError(
            f"images of shape {tuple(image_shape)} cannot be halved {times} times; the conv "
            f"networks need height and width divisible by {factor}"
        )
    return height // factor, width // factor


def conv_encoder(image_shape, filters=(32, 64), hidden=256, outputs=32, name="encoder"):
    """Strided 3×3 convolutions (each halves the image), a dense layer, then ``outputs`` units."""
    _check_downsampling(image_shape, len(filters))
    inputs = keras.Input(tuple(image_shape), name="images")
    x = inputs
    for f in filters:
        x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    if hidden:
        x = layers.Dense(hidden, activation="relu")(x)
    x = layers.Dense(outputs, dtype="float32")(x)
    return keras.Model(inputs, x, name=name)


def conv_decoder(image_shape, inputs_dim, filters=(64, 32), hidden=256, name="decoder"):
    """Mirror of ``conv_encoder``: dense → transposed convolutions → per-pixel logits."""
    height, width = _check_downsampling(image_shape, len(filters))
    inputs = keras.Input((inputs_dim,), name="latent")
    x = inputs
    if hidden:
        x = layers.Dense(hidden, activation="relu")(x)
    x = layers.Dense(height * width * filters[0], activation="relu")(x)
    x = layers.Reshape((height, width, filters[0]))(x)
    for f in filters:
        x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu")(x)
    logits = layers.Conv2D(image_shape[-1], 3, padding="same", dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name)


# Spectral normalisation -----------------------------------------------------------------
class _SpectralNorm:
    """Mixin: the kernel is divided by its largest singular value, estimated by one power
    iteration per training call (Miyato et al. 2018). Unlike keras.layers.SpectralNormalization
    it never overwrites the trainable kernel, and the power-iteration vector is updated with
    ``only_first_replica`` aggregation, so it works inside ``strategy.run``."""

    def _build_u(self, units):
        self.sn_u = self.add_weight(name="sn_u", shape=(1, units), trainable=False,
                                    initializer=keras.initializers.RandomNormal(seed=0),
                                    aggregation="only_first_replica")

    def normalized_kernel(self, training):
        import tensorflow as tf

        kernel = tf.convert_to_tensor(self.kernel)
        w = tf.reshape(kernel, [-1, kernel.shape[-1]])
        u = tf.stop_gradient(tf.convert_to_tensor(self.sn_u))
        v = tf.math.l2_normalize(tf.matmul(u, w, transpose_b=True))
        u_new = tf.stop_gradient(tf.math.l2_normalize(tf.matmul(v, w)))
        v = tf.stop_gradient(v)
        sigma = tf.reduce_sum(tf.matmul(v, w) * u_new)
        if training:
            self.sn_u.assign(u_new)
        return kernel / sigma


@keras.saving.register_keras_serializable("zoo")
class SNConv2D(_SpectralNorm, layers.Conv2D):
    def build(self, input_shape):
        super().build(input_shape)
        self._build_u(self.filters)

    def call(self, inputs, training=None):
        outputs = self.convolution_op(inputs, self.normalized_kernel(training))
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable("zoo")
class SNDense(_SpectralNorm, layers.Dense):
    def build(self, input_shape):
        super().build(input_shape)
        self._build_u(self.units)

    def call(self, inputs, training=None):
        import tensorflow as tf

        outputs = tf.matmul(inputs, self.normalized_kernel(training))
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs


# Class-conditional normalisation --------------------------------------------------------
@keras.saving.register_keras_serializable("zoo")
class ConditionalGroupNorm(layers.Layer):
    """GroupNorm without its own affine part, then a per-class scale and shift:
    x̂ · (1 + y·Γ) + y·B, where y is a one-hot (or interpolated) label vector. Unlike
    conditional BatchNorm it needs no batch statistics, so it behaves the same on any
    number of replicas and with averaged (EMA) weights."""

    def __init__(self, groups=8, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups

    def build(self, input_shape):
        x_shape, _ = input_shape
        channels = x_shape[-1]
        self.norm = layers.GroupNormalization(min(self.groups, channels), center=False, scale=False)
        self.gamma = layers.Dense(channels, use_bias=False, kernel_initializer="zeros")
        self.beta = layers.Dense(channels, use_bias=False, kernel_initializer="zeros")

    def call(self, inputs):
        x, y = inputs
        scale = 1.0 + self.gamma(y)[:, None, None, :]
        return self.norm(x) * scale + self.beta(y)[:, None, None, :]

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


def conditional_generator(image_shape, noise_dim, num_classes, filters=(128, 64, 32), name="generator"):
    """DCGAN generator: [noise, one-hot label] → dense → (transposed conv, conditional
    GroupNorm, ReLU) × n → 3×3 conv → tanh, in [-1, 1]."""
    height, width = _check_downsampling(image_shape, len(filters) - 1)
    noise = keras.Input((noise_dim,), name="noise")
    label = keras.Input((num_classes,), name="label")
    x = layers.Dense(height * width * filters[0])(layers.Concatenate()([noise, layers.Dense(noise_dim, use_bias=False)(label)]))
    x = layers.Reshape((height, width, filters[0]))(x)
    x = layers.ReLU()(ConditionalGroupNorm()([x, label]))
    for f in filters[1:]:
        x = layers.Conv2DTranspose(f, 4, strides=2, padding="same")(x)
        x = layers.ReLU()(ConditionalGroupNorm()([x, label]))
    x = layers.Conv2D(image_shape[-1], 3, padding="same", dtype="float32")(x)
    return keras.Model([noise, label], layers.Activation("tanh", dtype="float32")(x), name=name)


def projection_discriminator(image_shape, num_classes, filters=(64, 128, 128), name="discriminator"):
    """Spectrally normalised conv net with a projection head (Miyato & Koyama 2018):
    D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩, φ = global sum of the last features."""
    _check_downsampling(image_shape, len(filters) - 1)
    images = keras.Input(tuple(image_shape), name="images")
    label = keras.Input((num_classes,), name="label")
    x = images
    for i, f in enumerate(filters):
        x = SNConv2D(f, 4 if i < len(filters) - 1 else 3, strides=2 if i < len(filters) - 1 else 1,
                     padding="same")(x)
        x = layers.LeakyReLU(0.2)(x)
    features = layers.Lambda(lambda t: keras.ops.sum(t, axis=[1, 2]), name="sum_pool")(x)
    unconditional = SNDense(1, dtype="float32")(features)
    embedded = SNDense(filters[-1], use_bias=False)(label)
    projection = layers.Dot(axes=1)([embedded, features])
    logits = layers.Add(dtype="float32")([unconditional, projection])
    return keras.Model([images, label], layers.Reshape(())(logits), name=name)
