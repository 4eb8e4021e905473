"""Equinox models in the style of Equinox's examples and of the code bases built on it: the MNIST
CNN (``Conv2d``, pooling, an ``MLP`` head), a BERT-style encoder (``Embedding``,
``MultiheadAttention``, ``LayerNorm``, a learned position table drawn by user code), an RNN over a
``GRUCell`` with a user bias, a ResNet with ``BatchNorm`` built with ``make_with_state``, a scanned
``MLP`` and a model re-initialized with ``eqx.tree_at`` (the documented way to use a custom
initializer), and a bfloat16 MLP (Equinox's known 16-bit sampling defect). The buggy ones: two layers handed one key, a layer seeded with a fixed key, a
re-initialization whose scale is not the one intended."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from initcheck import laws
from tests.corpus import Entry

USER_MADE = "no equinox.nn layer made it"


class CNN(eqx.Module):
    """The MNIST example (on 12x12 images): two convolutions, max pooling, an MLP head; called on one
    image (C, H, W)."""

    layers: list

    def __init__(self, key):
        key1, key2, key3, key4 = jax.random.split(key, 4)
        self.layers = [
            eqx.nn.Conv2d(1, 4, kernel_size=3, key=key1),
            eqx.nn.MaxPool2d(kernel_size=2),
            jax.nn.relu,
            eqx.nn.Conv2d(4, 8, kernel_size=3, padding=1, key=key2),
            jnp.ravel,
            eqx.nn.Linear(8 * 9 * 9, 64, key=key3),
            jax.nn.sigmoid,
            eqx.nn.MLP(64, 10, width_size=32, depth=1, key=key4),
            jax.nn.log_softmax,
        ]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class EncoderLayer(eqx.Module):
    attention: eqx.nn.MultiheadAttention
    attention_norm: eqx.nn.LayerNorm
    mlp: eqx.nn.MLP
    mlp_norm: eqx.nn.LayerNorm

    def __init__(self, dim: int, heads: int, hidden: int, *, key):
        attention_key, mlp_key = jax.random.split(key)
        self.attention = eqx.nn.MultiheadAttention(
            heads, dim, use_query_bias=True, use_output_bias=True, key=attention_key
        )
        self.attention_norm = eqx.nn.LayerNorm(dim)
        self.mlp = eqx.nn.MLP(dim, dim, hidden, depth=1, activation=jax.nn.gelu, key=mlp_key)
        self.mlp_norm = eqx.nn.LayerNorm(dim)

    def __call__(self, x):
        h = jax.vmap(self.attention_norm)(x)
        x = x + self.attention(h, h, h)
        return x + jax.vmap(self.mlp)(jax.vmap(self.mlp_norm)(x))


class Encoder(eqx.Module):
    """BERT-style: token embedding, a learned position table drawn by user code, encoder layers."""

    token_embedder: eqx.nn.Embedding
    position_table: jax.Array
    layers: list
    final_norm: eqx.nn.LayerNorm

    def __init__(self, vocab: int = 50, dim: int = 16, depth: int = 2, max_len: int = 8, *, key):
        token_key, position_key, *layer_keys = jax.random.split(key, 2 + depth)
        self.token_embedder = eqx.nn.Embedding(vocab, dim, key=token_key)
        self.position_table = 0.02 * jax.random.normal(position_key, (max_len, dim))
        self.layers = [EncoderLayer(dim, 2, 4 * dim, key=k) for k in layer_keys]
        self.final_norm = eqx.nn.LayerNorm(dim)

    def __call__(self, tokens):
        x = jax.vmap(self.token_embedder)(tokens) + self.position_table[: tokens.shape[0]]
        for layer in self.layers:
            x = layer(x)
        return jax.vmap(self.final_norm)(x)


class RNN(eqx.Module):
    """The RNN example: a GRU cell scanned over the sequence, a linear readout and a user bias."""

    hidden_size: int
    cell: eqx.nn.GRUCell
    linear: eqx.nn.Linear
    bias: jax.Array

    def __init__(self, in_size: int = 2, out_size: int = 1, hidden_size: int = 16, *, key):
        ckey, lkey = jax.random.split(key)
        self.hidden_size = hidden_size
        self.cell = eqx.nn.GRUCell(in_size, hidden_size, key=ckey)
        self.linear = eqx.nn.Linear(hidden_size, out_size, use_bias=False, key=lkey)
        self.bias = jnp.zeros(out_size)

    def __call__(self, xs):
        def step(carry, x):
            return self.cell(x, carry), None

        out, _ = jax.lax.scan(step, jnp.zeros((self.hidden_size,)), xs)
        return jax.nn.sigmoid(self.linear(out) + self.bias)


class ResidualBlock(eqx.Module):
    conv1: eqx.nn.Conv2d
    norm1: eqx.nn.BatchNorm
    conv2: eqx.nn.Conv2d
    norm2: eqx.nn.BatchNorm

    def __init__(self, channels: int, *, key):
        k1, k2 = jax.random.split(key)
        self.conv1 = eqx.nn.Conv2d(channels, channels, 3, padding=1, use_bias=False, key=k1)
        self.norm1 = eqx.nn.BatchNorm(channels, axis_name="batch", mode="batch")
        self.conv2 = eqx.nn.Conv2d(channels, channels, 3, padding=1, use_bias=False, key=k2)
        self.norm2 = eqx.nn.BatchNorm(channels, axis_name="batch", mode="batch")

    def __call__(self, x, state):
        h, state = self.norm1(self.conv1(x), state)
        h, state = self.norm2(self.conv2(jax.nn.relu(h)), state)
        return jax.nn.relu(x + h), state


class ResNet(eqx.Module):
    stem: eqx.nn.Conv2d
    blocks: list
    head: eqx.nn.Linear

    def __init__(self, channels: int = 8, blocks: int = 2, classes: int = 10, *, key):
        stem_key, head_key, *block_keys = jax.random.split(key, 2 + blocks)
        self.stem = eqx.nn.Conv2d(3, channels, 3, padding=1, key=stem_key)
        self.blocks = [ResidualBlock(channels, key=k) for k in block_keys]
        self.head = eqx.nn.Linear(channels, classes, key=head_key)

    def _one(self, x, state):
        x = self.stem(x)
        for block in self.blocks:
            x, state = block(x, state)
        return self.head(jnp.mean(x, axis=(1, 2))), state

    def __call__(self, images, state):
        """A batch of images: BatchNorm's statistics are taken over the vmapped "batch" axis."""
        return jax.vmap(self._one, axis_name="batch", in_axes=(0, None), out_axes=(0, None))(images, state)


def resnet_with_state(key):
    return eqx.nn.make_with_state(ResNet)(key=key)


def trunc_init(weight: jax.Array, key) -> jax.Array:
    """The custom initializer of Equinox's FAQ: a truncated normal of std 1/sqrt(fan_in)."""
    out, in_ = weight.shape
    stddev = math.sqrt(1 / in_)
    return stddev * jax.random.truncated_normal(key, shape=(out, in_), lower=-2, upper=2)


def init_linear_weight(model, init_fn, key):
    is_linear = lambda x: isinstance(x, eqx.nn.Linear)
    get_weights = lambda m: [x.weight for x in jax.tree_util.tree_leaves(m, is_leaf=is_linear) if is_linear(x)]
    weights = get_weights(model)
    new_weights = [init_fn(w, k) for w, k in zip(weights, jax.random.split(key, len(weights)))]
    return eqx.tree_at(get_weights, model, new_weights)


def reinitialized_mlp(key, init_fn=trunc_init):
    model_key, init_key = jax.random.split(key)
    return init_linear_weight(eqx.nn.MLP(16, 4, 32, 2, key=model_key), init_fn, init_key)


def wide_trunc_init(weight, key):
    """The bug: the std divides by the output width (16 or 32) where 1/sqrt(fan_in) is intended."""
    out, in_ = weight.shape
    return math.sqrt(1 / max(out, 1) / 4) * jax.random.truncated_normal(key, -2, 2, (out, in_))


class SharedKey(eqx.Module):
    """The bug: both projections are handed the model's key, so they start identical."""

    query: eqx.nn.Linear
    key_proj: eqx.nn.Linear

    def __init__(self, key):
        self.query = eqx.nn.Linear(16, 16, key=key)
        self.key_proj = eqx.nn.Linear(16, 16, key=key)

    def __call__(self, x):
        return self.query(x) * self.key_proj(x)


class FixedKey(eqx.Module):
    """The bug: the head is seeded with a constant key, whatever key the model is given."""

    body: eqx.nn.Linear
    head: eqx.nn.Linear

    def __init__(self, key):
        self.body = eqx.nn.Linear(8, 32, key=key)
        self.head = eqx.nn.Linear(32, 4, key=jax.random.PRNGKey(42))

    def __call__(self, x):
        return self.head(jax.nn.relu(self.body(x)))


def _x(*shape):
    return jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float32)


TRUNC = {  # trunc_init: 1/sqrt(fan_in) times a standard normal truncated to [-2, 2]
    "layers/0/weight": laws.TruncatedNormal(1 / 4, -2.0, 2.0),
    "layers/*/weight": laws.TruncatedNormal(1 / math.sqrt(32), -2.0, 2.0),
}
POSITIONS = {"position_table": laws.Normal(0.02)}

ENTRIES = [
    Entry(
        "equinox-bf16-mlp",
        lambda: (
            lambda key: eqx.nn.MLP(256, 256, 512, 1, dtype=jnp.bfloat16, key=key),
            (),
            {"rng": 9, "call_args": (jnp.ones(256, jnp.bfloat16),)},
        ),
        known=dict.fromkeys(["layers/0/weight", "layers/0/bias", "layers/1/weight"], "equinox-low-precision-sampling"),
    ),
    Entry("equinox-mnist-cnn", lambda: (CNN, (), {"rng": 0, "call_args": (_x(1, 12, 12),)})),
    Entry(
        "equinox-encoder",
        lambda: (Encoder, (), {"rng": 1, "expect": POSITIONS, "call_args": (jnp.arange(8) % 50,)}),
        uncovered={"position_table": USER_MADE},
    ),
    Entry(
        "equinox-rnn",
        lambda: (RNN, (), {"rng": 2, "expect": {"bias": laws.Constant(0.0)}, "call_args": (_x(12, 2),)}),
        uncovered={"bias": USER_MADE},
    ),
    Entry(
        "equinox-resnet-batchnorm",
        lambda: (
            resnet_with_state,
            (),
            {"rng": 3, "call_args": (_x(2, 3, 8, 8),)},
        ),
    ),
    Entry(
        "equinox-mlp-scan",
        lambda: (lambda key: eqx.nn.MLP(8, 2, 32, 4, scan=True, key=key), (), {"rng": 4, "call_args": (_x(8),)}),
    ),
    Entry(
        "equinox-tree-at-reinit",
        lambda: (reinitialized_mlp, (), {"rng": 5, "expect": TRUNC, "call_args": (_x(16),)}),
        uncovered=dict.fromkeys(["layers/0/weight", "layers/1/weight", "layers/2/weight"], USER_MADE),
    ),
    Entry(
        "equinox-shared-key",
        lambda: (SharedKey, (), {"rng": 6, "call_args": (_x(16),)}),
        flagged={
            "query/weight": "both layers were handed the same key",
            "query/bias": "both layers were handed the same key",
            "key_proj/weight": "both layers were handed the same key",
            "key_proj/bias": "both layers were handed the same key",
        },
    ),
    Entry(
        "equinox-fixed-key",
        lambda: (FixedKey, (), {"rng": 7, "call_args": (_x(8),)}),
        flagged={
            "head/weight": "the same when the model is initialized from another root key",
            "head/bias": "the same when the model is initialized from another root key",
        },
    ),
    Entry(
        "equinox-tree-at-wrong-scale",
        lambda: (
            lambda key: reinitialized_mlp(key, wide_trunc_init),
            (),
            {"rng": 8, "expect": TRUNC, "call_args": (_x(16),)},
        ),
        flagged={
            "layers/0/weight": "scale is off",
            "layers/1/weight": "scale is off",
            "layers/2/weight": "scale is off",
        },
        uncovered=dict.fromkeys(["layers/0/weight", "layers/1/weight", "layers/2/weight"], USER_MADE),
    ),
]
