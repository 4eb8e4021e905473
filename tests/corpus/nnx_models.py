"""Flax nnx models in the style of the nnx examples and guides: a transformer block on
``nnx.MultiHeadAttention``, layers stacked with ``nnx.split_rngs`` + ``nnx.vmap`` and run with
``nnx.scan``, ensembles under ``nnx.vmap`` (streams split by nnx, and keys split by hand), a CNN with
BatchNorm and Dropout (the MNIST example), recurrent cells, MaxText-style layers whose kernels come
from ``nd_dense_init`` and whose biases are made outside any ``*_init`` argument, bf16 params, a
Gemma-style language model on ``nnx.Einsum`` called as ``model(tokens, deterministic)``, orthogonal
kernels drawn flat by ``LinearGeneral`` and ``MultiHeadAttention``, and blocks each built from a copy
of the model's ``Rngs`` (a bug: every block starts identical)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from tests.corpus import Entry


class FeedForward(nnx.Module):
    def __init__(self, dim: int, hidden: int, *, rngs: nnx.Rngs, dropout: float = 0.1):
        self.up = nnx.Linear(dim, hidden, kernel_init=nnx.initializers.xavier_uniform(), rngs=rngs)
        self.down = nnx.Linear(
            hidden,
            dim,
            kernel_init=nnx.initializers.xavier_uniform(),
            bias_init=nnx.initializers.normal(1e-6),
            rngs=rngs,
        )
        self.dropout = nnx.Dropout(dropout, rngs=rngs)

    def __call__(self, x, *, deterministic=True):
        return self.down(self.dropout(nnx.gelu(self.up(x)), deterministic=deterministic))


class TransformerBlock(nnx.Module):
    def __init__(self, dim: int = 32, heads: int = 4, hidden: int = 64, *, rngs: nnx.Rngs):
        self.attention_norm = nnx.LayerNorm(dim, rngs=rngs)
        self.attention = nnx.MultiHeadAttention(
            num_heads=heads, in_features=dim, decode=False, kernel_init=nnx.initializers.xavier_uniform(), rngs=rngs
        )
        self.mlp_norm = nnx.LayerNorm(dim, rngs=rngs)
        self.mlp = FeedForward(dim, hidden, rngs=rngs)

    def __call__(self, x):
        x = x + self.attention(self.attention_norm(x))
        return x + self.mlp(self.mlp_norm(x))


class TinyGPT(nnx.Module):
    """Token and position embeddings, a few blocks kept in a list, a tied head."""

    def __init__(self, vocab: int = 64, dim: int = 32, depth: int = 2, max_len: int = 16, *, rngs: nnx.Rngs):
        self.tokens = nnx.Embed(vocab, dim, embedding_init=nnx.initializers.normal(0.02), rngs=rngs)
        self.positions = nnx.Embed(max_len, dim, embedding_init=nnx.initializers.normal(0.01), rngs=rngs)
        self.blocks = nnx.List([TransformerBlock(dim, rngs=rngs) for _ in range(depth)])
        self.final_norm = nnx.RMSNorm(dim, rngs=rngs)

    def __call__(self, tokens):
        x = self.tokens(tokens) + self.positions(jnp.arange(tokens.shape[-1]))
        for block in self.blocks:
            x = block(x)
        return self.tokens.attend(self.final_norm(x))


class ScannedStack(nnx.Module):
    """The nnx guide's scan over layers: blocks created with split rngs under nnx.vmap."""

    def __init__(self, depth: int = 3, dim: int = 32, *, rngs: nnx.Rngs):
        @nnx.split_rngs(splits=depth)
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def create_block(rngs: nnx.Rngs):
            return TransformerBlock(dim, rngs=rngs)

        self.blocks = create_block(rngs)
        self.head = nnx.Linear(dim, 8, kernel_init=nnx.initializers.zeros_init(), rngs=rngs)

    def __call__(self, x):
        @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
        def forward(x, block):
            return block(x)

        return self.head(forward(x, self.blocks))


class MLP(nnx.Module):
    def __init__(self, din: int, dhidden: int, dout: int, *, rngs: nnx.Rngs):
        self.linear1 = nnx.Linear(din, dhidden, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)
        self.bn = nnx.BatchNorm(dhidden, rngs=rngs)
        self.linear2 = nnx.Linear(dhidden, dout, rngs=rngs)

    def __call__(self, x):
        return self.linear2(self.bn(self.dropout(nnx.relu(self.linear1(x)))))


class SplitEnsemble(nnx.Module):
    def __init__(self, members: int = 4, *, rngs: nnx.Rngs):
        @nnx.split_rngs(splits=members)
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def create(rngs):
            return MLP(6, 32, 1, rngs=rngs)

        self.members = create(rngs)

    def __call__(self, x):
        @nnx.vmap(in_axes=(0, None), out_axes=0)
        def forward(member, x):
            return member(x)

        return forward(self.members, x)


class KeyEnsemble(nnx.Module):
    """An ensemble made from keys split by hand (jax.random.split), one nnx.Rngs per member."""

    def __init__(self, members: int = 3, *, rngs: nnx.Rngs):
        @nnx.vmap(in_axes=0, out_axes=0)
        def create(key):
            return nnx.Linear(8, 16, rngs=nnx.Rngs(params=key))

        self.members = create(jax.random.split(rngs.params(), members))

    def __call__(self, x):
        return nnx.vmap(lambda member, x: member(x), in_axes=(0, None))(self.members, x)


class CNN(nnx.Module):
    """The nnx MNIST example's CNN."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.conv1 = nnx.Conv(1, 16, kernel_size=(3, 3), rngs=rngs)
        self.bn1 = nnx.BatchNorm(16, rngs=rngs)
        self.conv2 = nnx.Conv(16, 32, kernel_size=(3, 3), rngs=rngs)
        self.bn2 = nnx.BatchNorm(32, rngs=rngs)
        self.dropout = nnx.Dropout(0.25, rngs=rngs)
        self.linear1 = nnx.Linear(7 * 7 * 32, 64, rngs=rngs)
        self.linear2 = nnx.Linear(64, 10, rngs=rngs)
        self.avg_pool = functools.partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))

    def __call__(self, x):
        x = self.avg_pool(nnx.relu(self.bn1(self.conv1(x))))
        x = self.avg_pool(nnx.relu(self.bn2(self.conv2(x))))
        x = x.reshape(x.shape[0], -1)
        return self.linear2(nnx.relu(self.dropout(self.linear1(x))))


class Recurrent(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.lstm = nnx.LSTMCell(8, 16, rngs=rngs)
        self.optimized = nnx.OptimizedLSTMCell(8, 16, rngs=rngs)
        self.gru = nnx.GRUCell(16, 16, rngs=rngs)
        self.head = nnx.Linear(16, 2, rngs=rngs)

    def __call__(self, xs):
        carry = (jnp.zeros((xs.shape[1], 16)), jnp.zeros((xs.shape[1], 16)))
        gru_carry = jnp.zeros((xs.shape[1], 16))
        for x in xs:
            carry, h = self.lstm(carry, x)
            _, h2 = self.optimized(carry, x)
            gru_carry, y = self.gru(gru_carry, h + h2)
        return self.head(y)


def nd_dense_init(scale, mode, distribution):
    def init_fn(key, shape, dtype, in_axis, out_axis):
        fn = jax.nn.initializers.variance_scaling(scale, mode, distribution, in_axis, out_axis)
        return fn(key, shape, dtype)

    return init_fn


default_bias_init = jax.nn.initializers.constant(0.0)
default_kernel_init = nd_dense_init(1.0, "fan_in", "normal")


class DenseGeneral(nnx.Module):
    """MaxText's nnx DenseGeneral: the kernel from nd_dense_init with its axes, the bias made directly."""

    def __init__(
        self,
        in_features_shape,
        out_features_shape,
        *,
        kernel_init=default_kernel_init,
        kernel_axes=(),
        use_bias=True,
        weight_dtype=jnp.float32,
        rngs: nnx.Rngs,
    ):
        self.in_features_shape = tuple(np.atleast_1d(in_features_shape))
        self.out_features_shape = tuple(np.atleast_1d(out_features_shape))
        kernel_shape = self.in_features_shape + self.out_features_shape
        kernel_in_axis = np.arange(len(self.in_features_shape))
        kernel_out_axis = np.arange(len(self.in_features_shape), len(kernel_shape))
        self.kernel = nnx.Param(
            kernel_init(rngs.params(), kernel_shape, weight_dtype, kernel_in_axis, kernel_out_axis),
            out_sharding=kernel_axes,
        )
        if use_bias:
            self.bias = nnx.Param(
                default_bias_init(rngs.params(), self.out_features_shape, weight_dtype),
                out_sharding=kernel_axes[-len(self.out_features_shape) :],
            )
        else:
            self.bias = None

    def __call__(self, inputs):
        axis = tuple(range(inputs.ndim - len(self.in_features_shape), inputs.ndim))
        contract_ind = tuple(range(len(axis)))
        output = jax.lax.dot_general(inputs, self.kernel[...], ((axis, contract_ind), ((), ())))
        if self.bias is not None:
            output = output + self.bias[...]
        return output


class MaxTextMlp(nnx.Module):
    def __init__(self, dim: int = 32, hidden: int = 64, heads: int = 4, *, rngs: nnx.Rngs):
        self.wi = DenseGeneral(dim, hidden, kernel_axes=("embed", "mlp"), rngs=rngs)
        self.wo = DenseGeneral(hidden, dim, kernel_axes=("mlp", "embed"), rngs=rngs)
        self.qkv = DenseGeneral(
            dim, (3, heads, dim // heads), kernel_axes=("embed", "qkv", "heads", "kv"), use_bias=False, rngs=rngs
        )

    def __call__(self, x):
        q, k, v = jnp.moveaxis(self.qkv(x), -3, 0)
        attended = jax.nn.dot_product_attention(q, k, v).reshape(x.shape)
        return self.wo(nnx.gelu(self.wi(x + attended)))


class Bf16Layers(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.embed = nnx.Embed(128, 64, param_dtype=jnp.bfloat16, rngs=rngs)
        self.linear = nnx.Linear(64, 64, param_dtype=jnp.bfloat16, rngs=rngs)
        self.norm = nnx.LayerNorm(64, param_dtype=jnp.bfloat16, rngs=rngs)
        self.conv = nnx.Conv(64, 64, (3,), param_dtype=jnp.bfloat16, rngs=rngs)

    def __call__(self, tokens):
        return self.conv(self.norm(self.linear(self.embed(tokens))))


class Partitioned(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.linear = nnx.Linear(
            32,
            64,
            kernel_init=nnx.with_partitioning(nnx.initializers.lecun_normal(), ("embed", "mlp")),
            bias_init=nnx.with_partitioning(nnx.initializers.zeros_init(), ("mlp",)),
            rngs=rngs,
        )
        self.embed = nnx.Embed(
            64,
            32,
            embedding_init=nnx.with_metadata(nnx.initializers.normal(0.02), sharding=("vocab", "embed")),
            rngs=rngs,
        )

    def __call__(self, tokens):
        return self.linear(self.embed(tokens))


class GemmaMlp(nnx.Module):
    def __init__(self, dim: int, hidden: int, *, rngs: nnx.Rngs):
        init = nnx.initializers.variance_scaling(1.0, "fan_in", "truncated_normal", in_axis=1, out_axis=2, batch_axis=0)
        self.gate_up = nnx.Einsum("btd,cdf->cbtf", (2, dim, hidden), kernel_init=init, rngs=rngs)
        self.down = nnx.Einsum("btf,fd->btd", (hidden, dim), rngs=rngs)

    def __call__(self, x):
        gate, up = self.gate_up(x)
        return self.down(nnx.gelu(gate) * up)


class GemmaDecoderLayer(nnx.Module):
    """A decoder layer in the style of the nnx Gemma example: ``nnx.Einsum`` projections whose inits
    are told which axes the einsum contracts, RMSNorms, dropout switched by ``deterministic``."""

    def __init__(self, dim: int = 32, heads: int = 4, head_dim: int = 8, *, rngs: nnx.Rngs):
        self.heads, self.head_dim = heads, head_dim
        qkv_init = nnx.initializers.variance_scaling(1.0, "fan_in", "normal", in_axis=1, out_axis=(2, 3), batch_axis=0)
        out_init = nnx.initializers.variance_scaling(1.0, "fan_in", "normal", in_axis=(0, 1), out_axis=2)
        self.qkv = nnx.Einsum("btd,sdnh->sbtnh", (3, dim, heads, head_dim), kernel_init=qkv_init, rngs=rngs)
        self.attn_out = nnx.Einsum("btnh,nhd->btd", (heads, head_dim, dim), kernel_init=out_init, rngs=rngs)
        self.pre_attention_norm = nnx.RMSNorm(dim, rngs=rngs)
        self.pre_ffw_norm = nnx.RMSNorm(dim, rngs=rngs)
        self.mlp = GemmaMlp(dim, 2 * dim, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)

    def __call__(self, x, deterministic: bool):
        q, k, v = self.qkv(self.pre_attention_norm(x))
        y = jax.nn.dot_product_attention(q, k, v, is_causal=True)
        x = x + self.dropout(self.attn_out(y), deterministic=deterministic)
        return x + self.dropout(self.mlp(self.pre_ffw_norm(x)), deterministic=deterministic)


class GemmaLM(nnx.Module):
    """int32 tokens in, logits out (tied embedding); ``__call__(tokens, deterministic)`` takes the
    flag positionally, audited in training mode (dropout on)."""

    def __init__(self, vocab: int = 128, dim: int = 32, depth: int = 2, *, rngs: nnx.Rngs):
        self.embedder = nnx.Embed(vocab, dim, embedding_init=nnx.initializers.normal(), rngs=rngs)
        self.layers = nnx.List([GemmaDecoderLayer(dim, rngs=rngs) for _ in range(depth)])
        self.final_norm = nnx.RMSNorm(dim, rngs=rngs)

    def __call__(self, tokens, deterministic: bool):
        x = self.embedder(tokens) * jnp.sqrt(self.embedder.features)
        for layer in self.layers:
            x = layer(x, deterministic)
        return self.embedder.attend(self.final_norm(x))


class OrthogonalAttention(nnx.Module):
    """Orthogonal kernels drawn flat by ``nnx.LinearGeneral`` and ``nnx.MultiHeadAttention`` (the
    kernel (in, heads, head_dim) is drawn as (in, heads * head_dim) and reshaped); a ``train``
    keyword switches the dropout."""

    def __init__(self, dim: int = 32, heads: int = 4, *, rngs: nnx.Rngs):
        ortho = nnx.initializers.orthogonal()
        self.heads = heads
        self.embed = nnx.LinearGeneral(12, (heads, dim // heads), kernel_init=ortho, rngs=rngs)
        self.attention = nnx.MultiHeadAttention(
            num_heads=heads, in_features=dim, kernel_init=ortho, dropout_rate=0.1, decode=False, rngs=rngs
        )
        self.merge = nnx.LinearGeneral((heads, dim // heads), 16, axis=(-2, -1), kernel_init=ortho, rngs=rngs)
        self.head = nnx.Linear(16, 4, rngs=rngs)

    def __call__(self, obs, *, train: bool = False):
        x = self.embed(obs)
        x = x.reshape(*x.shape[:-2], -1)
        x = x + self.attention(x, deterministic=not train)
        return self.head(nnx.relu(self.merge(x.reshape(*x.shape[:-1], self.heads, -1))))


class Block(nnx.Module):
    def __init__(self, dim: int, *, rngs: nnx.Rngs):
        self.norm = nnx.LayerNorm(dim, rngs=rngs)
        self.up = nnx.Linear(dim, 2 * dim, rngs=rngs)
        self.down = nnx.Linear(2 * dim, dim, rngs=rngs)

    def __call__(self, x):
        return x + self.down(nnx.gelu(self.up(self.norm(x))))


class ClonedRngsStack(nnx.Module):
    """The bug: every block is built from a copy of the model's ``Rngs`` (``nnx.clone``), meant to
    keep the blocks independent of the order they are built in; each copy hands out the same keys,
    so every block starts identical."""

    def __init__(self, depth: int = 3, dim: int = 16, *, rngs: nnx.Rngs):
        self.blocks = nnx.List([Block(dim, rngs=nnx.clone(rngs)) for _ in range(depth)])
        self.head = nnx.Linear(dim, 4, rngs=rngs)

    def __call__(self, x):
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def in_mesh(cls):
    """A factory that builds ``cls`` under a one-device mesh whose axes carry the model's logical
    names (eager sharding needs a mesh for sharding metadata); the audit runs the forward pass in it."""
    names = ("embed", "mlp", "vocab", "heads", "kv", "qkv")

    def factory(rngs):
        auto = (jax.sharding.AxisType.Auto,) * len(names)  # as MaxText's meshes: XLA propagates shardings
        with jax.set_mesh(jax.make_mesh((1,) * len(names), names, axis_types=auto)):
            return cls(rngs=rngs)

    return factory


def _x(*shape):
    return jnp.ones(shape)


def _tokens(*shape):
    return jnp.ones(shape, jnp.int32)


def _token_ids(batch=2, length=8, vocab=128):
    return jnp.asarray(np.random.default_rng(0).integers(0, vocab, (batch, length)), jnp.int32)


ENTRIES = [
    Entry(
        "nnx-transformer-block",
        lambda: (TransformerBlock, (), {"rng": {"params": 0, "dropout": 1}, "call_args": (_x(2, 8, 32),)}),
    ),
    Entry("nnx-tiny-gpt", lambda: (TinyGPT, (), {"rng": 0, "call_args": (_tokens(2, 8),)})),
    Entry(
        "nnx-mha",
        lambda: (
            nnx.MultiHeadAttention,
            (4, 32),
            {"rng": 0, "call_args": (_x(2, 5, 32),), "call_kwargs": {"decode": False}},
        ),
    ),
    Entry("nnx-scanned-stack", lambda: (ScannedStack, (), {"rng": 0, "call_args": (_x(2, 8, 32),)})),
    Entry(
        "nnx-split-ensemble",
        lambda: (SplitEnsemble, (), {"rng": {"params": 2, "dropout": 3}, "call_args": (_x(5, 6),)}),
    ),
    Entry("nnx-key-ensemble", lambda: (KeyEnsemble, (), {"rng": 5, "call_args": (_x(2, 8),)})),
    Entry("nnx-cnn-batchnorm", lambda: (CNN, (), {"rng": 0, "call_args": (_x(2, 28, 28, 1),)})),
    Entry("nnx-recurrent", lambda: (Recurrent, (), {"rng": 0, "call_args": (_x(5, 2, 8),)})),
    Entry("nnx-maxtext-dense", lambda: (in_mesh(MaxTextMlp), (), {"rng": 0, "call_args": (_x(2, 8, 32),)})),
    Entry(
        "nnx-bf16",
        lambda: (Bf16Layers, (), {"rng": 0, "call_args": (_tokens(2, 8),)}),
        known=dict.fromkeys(["conv/kernel", "embed/embedding", "linear/kernel"], "jax-low-precision-sampling"),
    ),
    Entry("nnx-partitioned", lambda: (in_mesh(Partitioned), (), {"rng": 0, "call_args": (_tokens(2, 8),)})),
    Entry(
        "nnx-linear-general-batch-axis",
        lambda: (
            lambda rngs: nnx.LinearGeneral((16,), (8,), batch_axis={0: 4}, rngs=rngs),
            (),
            {"rng": 0, "call_args": (_x(4, 3, 16),)},
        ),
        flagged={"kernel": "the law counts its batch axis 0 (4) in the fan: output variance x0.25"},
    ),
    Entry(
        "nnx-gemma-lm-deterministic-flag",
        lambda: (
            GemmaLM,
            (),
            {"rng": {"params": 0, "dropout": 1}, "call_args": (_token_ids(), False)},
        ),
    ),
    Entry(
        "nnx-orthogonal-linear-general",
        lambda: (
            OrthogonalAttention,
            (),
            {"rng": {"params": 2, "dropout": 3}, "call_args": (_x(2, 5, 12),), "call_kwargs": {"train": True}},
        ),
    ),
    Entry(
        "nnx-cloned-rngs-blocks",
        lambda: (ClonedRngsStack, (), {"rng": 4, "call_args": (_x(2, 16),)}),
        flagged={
            **dict.fromkeys([f"blocks/{i}/{n}/kernel" for i in range(3) for n in ("up", "down")], "drawn from one key"),
            **dict.fromkeys(
                [f"blocks/{i}/{p}" for i in (1, 2) for p in ("norm/scale", "norm/bias", "up/bias", "down/bias")],
                "of its stream",
            ),
            "head/kernel": "of its stream",
            "head/bias": "of its stream",
        },
    ),
]
