"""Keras 3 models (JAX backend) in the style of the Keras code examples: a Sequential convnet with
BatchNormalization and Dropout (the MNIST example), a functional text transformer block
(``Embedding``, ``MultiHeadAttention`` whose ``EinsumDense`` kernels take their fans from the
einsum's axes, ``LayerNormalization``), an LSTM classifier (orthogonal recurrent kernels and the
unit-forget bias), a GRU, a MobileNet-style block (depthwise and separable convolutions), a
subclassed model, and a bfloat16 Dense (Keras's known 16-bit sampling defect). The buggy ones: one seeded initializer object shared by several layers, and a
user's initializer whose fan is not the one it promises.

Every model is built after ``keras.utils.set_random_seed`` so that its seeds, and so the verdicts,
are the same at every run."""

from __future__ import annotations

import math
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

import keras
import numpy as np

import initcheck
from initcheck import laws
from tests.corpus import Entry

layers = keras.layers


def _x(*shape):
    return np.random.default_rng(0).normal(size=shape).astype(np.float32)


def _tokens(*shape, vocab=100):
    return np.random.default_rng(0).integers(0, vocab, size=shape).astype(np.int32)


def seeded(build):
    """``build`` after fixing Keras's global seed, which seeds every unseeded initializer."""

    def make():
        keras.utils.set_random_seed(1234)
        return build()

    return make


def mnist_convnet():
    return keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(8, kernel_size=(3, 3), activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Conv2D(16, kernel_size=(3, 3), activation="relu"),
            layers.MaxPooling2D(pool_size=(2, 2)),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )


class TransformerBlock(layers.Layer):
    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.att = layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = keras.Sequential([layers.Dense(ff_dim, activation="relu"), layers.Dense(embed_dim)])
        self.layernorm1 = layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = layers.Dropout(rate)
        self.dropout2 = layers.Dropout(rate)

    def call(self, inputs):
        attn_output = self.dropout1(self.att(inputs, inputs))
        out1 = self.layernorm1(inputs + attn_output)
        return self.layernorm2(out1 + self.dropout2(self.ffn(out1)))


class TokenAndPositionEmbedding(layers.Layer):
    def __init__(self, maxlen, vocab_size, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.token_emb = layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def call(self, x):
        positions = keras.ops.arange(0, keras.ops.shape(x)[-1], 1)
        return self.token_emb(x) + self.pos_emb(positions)


def text_transformer(maxlen=12, vocab=100, dim=16):
    inputs = layers.Input(shape=(maxlen,))
    x = TokenAndPositionEmbedding(maxlen, vocab, dim)(inputs)
    x = TransformerBlock(dim, 2, 32)(x)
    x = layers.GlobalAveragePooling1D()(x)
    outputs = layers.Dense(2, activation="softmax")(x)
    return keras.Model(inputs=inputs, outputs=outputs)


def lstm_classifier():
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = layers.Embedding(100, 16)(inputs)
    x = layers.LSTM(16, return_sequences=True)(x)
    x = layers.GRU(8)(x)
    return keras.Model(inputs, layers.Dense(1, activation="sigmoid")(x))


def mobilenet_block():
    inputs = keras.Input(shape=(16, 16, 8))
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU(6.0)(x)
    x = layers.SeparableConv2D(16, 3, padding="same")(x)
    x = layers.Conv2D(16, 1, kernel_initializer="he_normal")(x)
    return keras.Model(inputs, layers.GlobalAveragePooling2D()(x))


class Classifier(keras.Model):
    """A subclassed model, built on its first call."""

    def __init__(self):
        super().__init__()
        self.hidden = layers.Dense(32, activation="relu", kernel_initializer="lecun_normal")
        self.out = layers.Dense(4, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02))

    def call(self, x):
        return self.out(self.hidden(x))


def shared_seeded_initializer():
    """The bug: one seeded initializer object passed to every layer; each draws from the same key."""
    init = keras.initializers.GlorotUniform(seed=7)
    return keras.Sequential(
        [
            keras.Input(shape=(16,)),
            layers.Dense(16, kernel_initializer=init, name="query"),
            layers.Dense(16, kernel_initializer=init, name="key"),
        ],
        name="shared",
    )


@initcheck.expects(laws.VarianceScaling(2.0, "fan_in", "normal", fans="haiku"))
class HeByLastAxis(keras.initializers.Initializer):
    """The bug: promises He (fan_in) but divides by the last axis, the fan_out of a Dense kernel."""

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        return keras.random.normal(shape, stddev=math.sqrt(2.0 / shape[-1]), dtype=dtype, seed=self.seed)


def wrong_fan_initializer():
    return keras.Sequential(
        [keras.Input(shape=(64,)), layers.Dense(8, kernel_initializer=HeByLastAxis(seed=3), name="head")],
        name="wrong_fan",
    )


def bf16_dense():
    return keras.Sequential([keras.Input((512,)), layers.Dense(512, dtype="bfloat16", name="wide")], name="bf16")


ENTRIES = [
    Entry(
        "keras-bf16-dense",
        lambda: (seeded(bf16_dense)(), (_x(2, 512),), {}),
        known={"bf16/wide/kernel": "keras-low-precision-sampling"},
    ),
    Entry("keras-mnist-convnet", lambda: (seeded(mnist_convnet)(), (_x(2, 28, 28, 1),), {})),
    Entry("keras-text-transformer", lambda: (seeded(text_transformer)(), (_tokens(2, 12),), {})),
    Entry("keras-lstm-gru", lambda: (seeded(lstm_classifier)(), (_tokens(2, 6),), {})),
    Entry("keras-mobilenet-block", lambda: (seeded(mobilenet_block)(), (_x(2, 16, 16, 8),), {})),
    Entry("keras-subclassed", lambda: (seeded(Classifier)(), (_x(2, 12),), {})),
    Entry(
        "keras-shared-seeded-initializer",
        lambda: (seeded(shared_seeded_initializer)(), (_x(2, 16),), {}),
        flagged={
            "shared/query/kernel": "hold the same int seed",
            "shared/key/kernel": "hold the same int seed",
        },
    ),
    Entry(
        "keras-wrong-fan-initializer",
        lambda: (seeded(wrong_fan_initializer)(), (_x(2, 64),), {}),
        flagged={"wrong_fan/head/kernel": "scale is off"},
    ),
]
