"""Keras 3 models (JAX backend) in the style of the Keras code examples: a Sequential convnet with
BatchNormalization and Dropout (the MNIST example), a functional text transformer block
(``Embedding``, ``MultiHeadAttention`` whose ``EinsumDense`` kernels take their fans from the
einsum's axes, ``LayerNormalization``), an LSTM classifier (orthogonal recurrent kernels and the
unit-forget bias), a GRU, a MobileNet-style block (depthwise and separable convolutions), a
subclassed model, a bfloat16 Dense (Keras's known 16-bit sampling defect), and a keras-hub-style Gemma
fed int32 token ids (``EinsumDense`` projections, an unseeded initializer cloned per layer). The buggy
ones: one seeded initializer object shared by several layers (also Gemma's four attention projections,
so K = V at init), a seeded initializer cloned per layer (each clone keeps the seed), and a user's
initializer whose fan is not the one it promises.

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


# --- keras-hub Gemma style: int32 token ids, EinsumDense projections, one initializer per layer ----


def clone_initializer(initializer):
    """keras-hub's helper: a new initializer object made from the config of the given one (an
    unseeded one gets a seed of its own; a seeded one keeps its seed)."""
    return initializer.__class__.from_config(initializer.get_config())


class RMSNormalization(layers.Layer):
    """Gemma's RMS norm: a scale initialized at zero, applied as ``1 + scale``."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.scale_initializer = keras.initializers.Zeros()

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],), initializer=self.scale_initializer)

    def call(self, x):
        var = keras.ops.mean(keras.ops.square(x), axis=-1, keepdims=True)
        return x * keras.ops.rsqrt(var + 1e-6) * (1 + self.scale)


class GemmaAttention(layers.Layer):
    """Grouped-query attention whose four projections are ``EinsumDense`` layers. ``initializer``
    picks what each projection is handed: ``"clone"`` a clone of ``kernel_initializer`` per layer
    (as keras-hub does), ``"shared"`` the one object itself."""

    def __init__(self, hidden_dim, num_heads, num_kv_heads, head_dim, kernel_initializer, initializer="clone", **kw):
        super().__init__(**kw)
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        init = (
            (lambda: kernel_initializer) if initializer == "shared" else lambda: clone_initializer(kernel_initializer)
        )
        self.query_dense = layers.EinsumDense(
            "btd,ndh->btnh", output_shape=(None, num_heads, head_dim), kernel_initializer=init(), name="query"
        )
        self.key_dense = layers.EinsumDense(
            "bsd,kdh->bskh", output_shape=(None, num_kv_heads, head_dim), kernel_initializer=init(), name="key"
        )
        self.value_dense = layers.EinsumDense(
            "bsd,kdh->bskh", output_shape=(None, num_kv_heads, head_dim), kernel_initializer=init(), name="value"
        )
        self.output_dense = layers.EinsumDense(
            "btnh,nhd->btd", output_shape=(None, hidden_dim), kernel_initializer=init(), name="attention_output"
        )

    def call(self, x):
        groups = self.num_heads // self.num_kv_heads
        q = self.query_dense(x) * self.head_dim**-0.5
        k = keras.ops.repeat(self.key_dense(x), groups, axis=2)
        v = keras.ops.repeat(self.value_dense(x), groups, axis=2)
        logits = keras.ops.einsum("btnh,bsnh->bnts", q, k)
        causal = keras.ops.tril(keras.ops.ones((keras.ops.shape(x)[1],) * 2, dtype="bool"))
        probs = keras.ops.softmax(keras.ops.where(causal, logits, -1e9), axis=-1)
        return self.output_dense(keras.ops.einsum("bnts,bsnh->btnh", probs, v))


class GemmaDecoderBlock(layers.Layer):
    """``initializer``: ``"clone"`` (correct: an unseeded initializer cloned per layer), ``"shared"``
    (the bug: one seeded initializer object handed to the four attention projections, so K = V at
    init), ``"clone-seeded"`` (the bug: a seeded initializer cloned per layer; each clone keeps the
    seed, so every projection of every block draws the same values)."""

    def __init__(self, hidden_dim, intermediate_dim, num_heads, num_kv_heads, head_dim, initializer, **kw):
        super().__init__(**kw)
        seed = None if initializer == "clone" else 1234
        kernel_initializer = keras.initializers.VarianceScaling(1.0, "fan_in", "untruncated_normal", seed=seed)
        self.pre_attention_norm = RMSNormalization(name="pre_attention_norm")
        self.attention = GemmaAttention(
            hidden_dim,
            num_heads,
            num_kv_heads,
            head_dim,
            kernel_initializer,
            "shared" if initializer == "shared" else "clone",
            name="attention",
        )
        if initializer == "shared":  # the feed-forward layers are given unseeded initializers of their own
            kernel_initializer = keras.initializers.VarianceScaling(1.0, "fan_in", "untruncated_normal")
        self.pre_ffw_norm = RMSNormalization(name="pre_ffw_norm")
        ffw = lambda equation, shape, name: layers.EinsumDense(
            equation, output_shape=shape, kernel_initializer=clone_initializer(kernel_initializer), name=name
        )
        self.gating_ffw = ffw("btd,df->btf", (None, intermediate_dim), "ffw_gating")
        self.gating_ffw_2 = ffw("btd,df->btf", (None, intermediate_dim), "ffw_gating_2")
        self.ffw_linear = ffw("btf,fd->btd", (None, hidden_dim), "ffw_linear")
        self.dropout = layers.Dropout(0.1)

    def call(self, x, training=False):
        x = x + self.dropout(self.attention(self.pre_attention_norm(x)), training=training)
        h = self.pre_ffw_norm(x)
        h = keras.ops.gelu(self.gating_ffw(h), approximate=True) * self.gating_ffw_2(h)
        return x + self.dropout(self.ffw_linear(h), training=training)


class GemmaLM(keras.Model):
    """A keras-hub-style Gemma backbone with a head, fed int32 token ids."""

    def __init__(self, vocab=128, hidden_dim=32, num_layers=2, initializer="clone", **kw):
        super().__init__(**kw)
        self.token_embedding = layers.Embedding(
            vocab, hidden_dim, embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02), name="embed"
        )
        self.blocks = [
            GemmaDecoderBlock(hidden_dim, 2 * hidden_dim, 4, 2, 8, initializer, name=f"decoder_block_{i}")
            for i in range(num_layers)
        ]
        self.final_norm = RMSNormalization(name="final_normalization")
        self.head = layers.Dense(vocab, use_bias=False, kernel_initializer="glorot_uniform", name="lm_head")

    def call(self, token_ids, training=False):
        x = self.token_embedding(token_ids) * keras.ops.sqrt(keras.ops.cast(self.token_embedding.output_dim, "float32"))
        for block in self.blocks:
            x = block(x, training=training)
        return self.head(self.final_norm(x))


ATTENTION = ("query", "key", "value", "attention_output")
FFW = ("ffw_gating", "ffw_gating_2", "ffw_linear")

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
    Entry(
        "keras-gemma-lm-tokens",
        lambda: (seeded(lambda: GemmaLM(name="gemma"))(), (_tokens(2, 8, vocab=128),), {}),
    ),
    Entry(
        "keras-gemma-shared-seeded-initializer",
        lambda: (seeded(lambda: GemmaLM(initializer="shared", name="gemma"))(), (_tokens(2, 8, vocab=128),), {}),
        flagged=dict.fromkeys(
            [f"gemma/decoder_block_{i}/attention/{p}/kernel" for i in (0, 1) for p in ATTENTION],
            "hold the same int seed",
        ),
    ),
    Entry(
        "keras-gemma-cloned-seeded-initializer",
        lambda: (seeded(lambda: GemmaLM(initializer="clone-seeded", name="gemma"))(), (_tokens(2, 8, vocab=128),), {}),
        flagged=dict.fromkeys(
            [
                f"gemma/decoder_block_{i}/{p}/kernel"
                for i in (0, 1)
                for p in (*(f"attention/{a}" for a in ATTENTION), *FFW)
            ],
            "hold the same int seed",
        ),
    ),
]
