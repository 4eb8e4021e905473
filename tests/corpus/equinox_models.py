"""Equinox models in the style of Equinox's examples and of the code bases built on it: the MNIST
CNN (``Conv2d``, pooling, an ``MLP`` head), a BERT-style encoder (``Embedding``,
``MultiheadAttention``, ``LayerNorm``, a learned position table drawn by user code), an RNN over a
``GRUCell`` with a user bias, a ResNet with ``BatchNorm`` built with ``make_with_state``, a scanned
``MLP`` and a model re-initialized with ``eqx.tree_at`` (the documented way to use a custom
initializer), a bfloat16 MLP (Equinox's known 16-bit sampling defect), the ViT example called as
``model(image, enable_dropout, key)`` and a causal LM on int32 tokens. The buggy ones: two layers
handed one key, a layer seeded with a fixed key, a re-initialization whose scale is not the one
intended, and the ViT example's original bug (every block built from one key)."""

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


class PatchEmbedding(eqx.Module):
    """Equinox's ViT example: non-overlapping patches flattened and projected by one Linear."""

    linear: eqx.nn.Linear
    patch_size: int

    def __init__(self, input_channels: int, output_shape: int, patch_size: int, *, key):
        self.patch_size = patch_size
        self.linear = eqx.nn.Linear(patch_size**2 * input_channels, output_shape, key=key)

    def __call__(self, x):
        c, h, w = x.shape
        p = self.patch_size
        x = x.reshape(c, h // p, p, w // p, p).transpose(1, 3, 2, 4, 0).reshape((h // p) * (w // p), p * p * c)
        return jax.vmap(self.linear)(x)


class AttentionBlock(eqx.Module):
    layer_norm1: eqx.nn.LayerNorm
    layer_norm2: eqx.nn.LayerNorm
    attention: eqx.nn.MultiheadAttention
    linear1: eqx.nn.Linear
    linear2: eqx.nn.Linear
    dropout1: eqx.nn.Dropout
    dropout2: eqx.nn.Dropout

    def __init__(self, input_shape: int, hidden_dim: int, num_heads: int, dropout_rate: float, *, key):
        key1, key2, key3 = jax.random.split(key, 3)
        self.layer_norm1 = eqx.nn.LayerNorm(input_shape)
        self.layer_norm2 = eqx.nn.LayerNorm(input_shape)
        self.attention = eqx.nn.MultiheadAttention(num_heads, input_shape, key=key1)
        self.linear1 = eqx.nn.Linear(input_shape, hidden_dim, key=key2)
        self.linear2 = eqx.nn.Linear(hidden_dim, input_shape, key=key3)
        self.dropout1 = eqx.nn.Dropout(dropout_rate)
        self.dropout2 = eqx.nn.Dropout(dropout_rate)

    def __call__(self, x, enable_dropout: bool, key):
        key1, key2 = jax.random.split(key)
        input_x = jax.vmap(self.layer_norm1)(x)
        x = x + self.attention(input_x, input_x, input_x)
        input_x = jax.vmap(self.layer_norm2)(x)
        input_x = jax.nn.gelu(jax.vmap(self.linear1)(input_x))
        input_x = self.dropout1(input_x, inference=not enable_dropout, key=key1)
        input_x = jax.vmap(self.linear2)(input_x)
        return x + self.dropout2(input_x, inference=not enable_dropout, key=key2)


class VisionTransformer(eqx.Module):
    """Equinox's ViT example at a small size, called on one image as ``model(x, enable_dropout,
    key)``; the class token and position table are drawn by user code (``jax.random.normal``).
    ``one_block_key``: the example's original bug, every block built from the same key."""

    patch_embedding: PatchEmbedding
    positional_embedding: jax.Array
    cls_token: jax.Array
    attention_blocks: list
    dropout: eqx.nn.Dropout
    norm: eqx.nn.LayerNorm
    mlp: eqx.nn.Linear
    num_layers: int

    def __init__(
        self,
        embedding_dim=32,
        hidden_dim=64,
        num_heads=4,
        num_layers=3,
        patch_size=4,
        num_patches=16,
        *,
        key,
        one_block_key=False,
    ):
        key1, key2, key3, key4, key5 = jax.random.split(key, 5)
        self.patch_embedding = PatchEmbedding(3, embedding_dim, patch_size, key=key1)
        self.positional_embedding = jax.random.normal(key2, (num_patches + 1, embedding_dim))
        self.cls_token = jax.random.normal(key3, (1, embedding_dim))
        self.num_layers = num_layers
        block_keys = [key4] * num_layers if one_block_key else list(jax.random.split(key4, num_layers))
        self.attention_blocks = [AttentionBlock(embedding_dim, hidden_dim, num_heads, 0.1, key=k) for k in block_keys]
        self.dropout = eqx.nn.Dropout(0.1)
        self.norm = eqx.nn.LayerNorm(embedding_dim)
        self.mlp = eqx.nn.Linear(embedding_dim, 10, key=key5)

    def __call__(self, x, enable_dropout: bool, key):
        x = self.patch_embedding(x)
        x = jnp.concatenate((self.cls_token, x), axis=0)
        x = x + self.positional_embedding[: x.shape[0]]
        dropout_key, *attention_keys = jax.random.split(key, num=self.num_layers + 1)
        x = self.dropout(x, inference=not enable_dropout, key=dropout_key)
        for block, attention_key in zip(self.attention_blocks, attention_keys):
            x = block(x, enable_dropout, key=attention_key)
        return self.mlp(self.norm(x[0]))


class DecoderBlock(eqx.Module):
    norm1: eqx.nn.RMSNorm
    attention: eqx.nn.MultiheadAttention
    norm2: eqx.nn.RMSNorm
    mlp: eqx.nn.MLP
    dropout: eqx.nn.Dropout

    def __init__(self, dim: int, heads: int, *, key):
        attention_key, mlp_key = jax.random.split(key)
        self.norm1 = eqx.nn.RMSNorm(dim)
        self.attention = eqx.nn.MultiheadAttention(heads, dim, key=attention_key)
        self.norm2 = eqx.nn.RMSNorm(dim)
        self.mlp = eqx.nn.MLP(dim, dim, 4 * dim, depth=1, activation=jax.nn.gelu, use_final_bias=False, key=mlp_key)
        self.dropout = eqx.nn.Dropout(0.1)

    def __call__(self, x, mask, enable_dropout: bool, key):
        h = jax.vmap(self.norm1)(x)
        x = x + self.attention(h, h, h, mask=mask)
        h = jax.vmap(self.mlp)(jax.vmap(self.norm2)(x))
        return x + self.dropout(h, inference=not enable_dropout, key=key)


class CausalLM(eqx.Module):
    """A small GPT on one int32 token sequence: ``model(tokens, enable_dropout, key)``."""

    embedding: eqx.nn.Embedding
    positions: eqx.nn.Embedding
    blocks: list
    norm: eqx.nn.RMSNorm
    unembed: eqx.nn.Linear

    def __init__(self, vocab: int = 128, dim: int = 32, depth: int = 2, context: int = 16, *, key):
        token_key, position_key, head_key, *block_keys = jax.random.split(key, 3 + depth)
        self.embedding = eqx.nn.Embedding(vocab, dim, key=token_key)
        self.positions = eqx.nn.Embedding(context, dim, key=position_key)
        self.blocks = [DecoderBlock(dim, 4, key=k) for k in block_keys]
        self.norm = eqx.nn.RMSNorm(dim)
        self.unembed = eqx.nn.Linear(dim, vocab, use_bias=False, key=head_key)

    def __call__(self, tokens, enable_dropout: bool, key):
        x = jax.vmap(self.embedding)(tokens) + jax.vmap(self.positions)(jnp.arange(tokens.shape[0]))
        mask = jnp.tril(jnp.ones((tokens.shape[0], tokens.shape[0]), bool))
        for block, k in zip(self.blocks, jax.random.split(key, len(self.blocks))):
            x = block(x, mask, enable_dropout, k)
        return jax.vmap(self.unembed)(jax.vmap(self.norm)(x))


def _x(*shape):
    return jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float32)


TRUNC = {  # trunc_init: 1/sqrt(fan_in) times a standard normal truncated to [-2, 2]
    "layers/0/weight": laws.TruncatedNormal(1 / 4, -2.0, 2.0),
    "layers/*/weight": laws.TruncatedNormal(1 / math.sqrt(32), -2.0, 2.0),
}
POSITIONS = {"position_table": laws.Normal(0.02)}
VIT_TABLES = {"positional_embedding": laws.Normal(1.0), "cls_token": laws.Normal(1.0)}


def _vit_call():
    """``model(image, enable_dropout, key)`` on one (C, H, W) image, dropout off."""
    return (_x(3, 16, 16), False, jax.random.key(1))


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
    Entry(
        "equinox-vit",
        lambda: (VisionTransformer, (), {"rng": 10, "expect": VIT_TABLES, "call_args": _vit_call()}),
        uncovered=dict.fromkeys(VIT_TABLES, USER_MADE),
    ),
    Entry(
        "equinox-vit-one-block-key",
        lambda: (
            lambda key: VisionTransformer(key=key, one_block_key=True),
            (),
            {"rng": 11, "expect": VIT_TABLES, "call_args": _vit_call()},
        ),
        flagged=dict.fromkeys(
            [
                f"attention_blocks/{i}/{path}"
                for i in range(3)
                for path in (
                    *(f"attention/{p}_proj/weight" for p in ("query", "key", "value", "output")),
                    *(f"linear{j}/{w}" for j in (1, 2) for w in ("weight", "bias")),
                )
            ],
            "both layers were handed the same key",
        ),
        uncovered=dict.fromkeys(VIT_TABLES, USER_MADE),
    ),
    Entry(
        "equinox-causal-lm-dropout-flag",
        lambda: (
            CausalLM,
            (),
            {
                "rng": 12,
                "call_args": (jnp.asarray(np.random.default_rng(0).integers(0, 128, 8)), True, jax.random.key(3)),
            },
        ),
    ),
]
