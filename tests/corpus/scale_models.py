"""Models at the sizes people train, written as their code bases write them (GPT-2 and Llama in the
style of nanoGPT / MaxText ports to linen, a ResNet-50 in the style of Flax's ``examples/imagenet``;
the Llama shape also in Flax nnx, its layers made under ``nnx.vmap`` with ``nnx.split_rngs`` and run
with ``nnx.scan`` as the nnx guide's "scan over layers" does, and in Haiku under ``hk.layer_stack``).

Every model is a correct one unless a ``bug`` is asked for; ``benchmarks/scale.py`` times them at
full size and ``tests/test_budget.py`` audits small configs of the same classes.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import flax.linen as nn
import haiku as hk
import jax
import jax.numpy as jnp
from flax import nnx


@dataclasses.dataclass(frozen=True)
class GPTConfig:
    vocab: int = 32000
    width: int = 768
    depth: int = 12
    heads: int = 12
    context: int = 64


class GPTBlock(nn.Module):
    config: GPTConfig

    @nn.compact
    def __call__(self, x, _):
        c = self.config
        init = nn.initializers.normal(0.02)
        residual = nn.initializers.normal(0.02 / math.sqrt(2 * c.depth))
        y = nn.LayerNorm(name="ln_1")(x)
        y = nn.MultiHeadDotProductAttention(num_heads=c.heads, kernel_init=init, out_kernel_init=residual, name="attn")(
            y, y, mask=nn.make_causal_mask(jnp.ones(x.shape[:2]))
        )
        x = x + y
        y = nn.Dense(4 * c.width, kernel_init=init, name="c_fc")(nn.LayerNorm(name="ln_2")(x))
        x = x + nn.Dense(c.width, kernel_init=residual, name="c_proj")(nn.gelu(y))
        return x, None


class GPT(nn.Module):
    """GPT-2 small shape: token and position embeddings, ``nn.scan`` over the blocks, untied head."""

    config: GPTConfig

    @nn.compact
    def __call__(self, tokens):
        c = self.config
        init = nn.initializers.normal(0.02)
        x = nn.Embed(c.vocab, c.width, embedding_init=init, name="wte")(tokens)
        x = x + self.param("wpe", init, (c.context, c.width))[: tokens.shape[1]]
        blocks = nn.scan(
            GPTBlock,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            length=c.depth,
        )(c, name="h")
        x, _ = blocks(x, None)
        x = nn.LayerNorm(name="ln_f")(x)
        return nn.Dense(c.vocab, use_bias=False, kernel_init=init, name="lm_head")(x)


@dataclasses.dataclass(frozen=True)
class LlamaConfig:
    vocab: int = 128256
    width: int = 4096
    depth: int = 32
    heads: int = 32
    kv_heads: int = 8
    hidden: int = 14336
    bug: str = ""  # "shared_layer_keys": the scan does not split its keys (every layer is the same draw);
    # "unscaled_down": the down projections (wo, w2) lack their 1/sqrt(2L) scale


def _down_std(c: LlamaConfig) -> float:
    """The residual projections' std: 0.02 / sqrt(2L), or 0.02 with the "unscaled_down" bug."""
    return 0.02 if c.bug == "unscaled_down" else 0.02 / math.sqrt(2 * c.depth)


class RMSNorm(nn.Module):
    @nn.compact
    def __call__(self, x):
        scale = self.param("scale", nn.initializers.ones_init(), (x.shape[-1],))
        return x * jax.lax.rsqrt(jnp.mean(x * x, -1, keepdims=True) + 1e-5) * scale


class LlamaBlock(nn.Module):
    config: LlamaConfig

    @nn.compact
    def __call__(self, x, _):
        c = self.config
        head = c.width // c.heads
        dense = functools.partial(nn.DenseGeneral, use_bias=False, kernel_init=nn.initializers.normal(0.02))
        y = RMSNorm(name="attention_norm")(x)
        q = dense((c.heads, head), name="wq")(y)
        k = dense((c.kv_heads, head), name="wk")(y)
        v = dense((c.kv_heads, head), name="wv")(y)
        k, v = (jnp.repeat(t, c.heads // c.kv_heads, axis=-2) for t in (k, v))
        weights = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(head), -1)
        attended = jnp.einsum("bhqk,bkhd->bqhd", weights, v)
        out = nn.initializers.normal(_down_std(c))
        x = x + dense(c.width, axis=(-2, -1), kernel_init=out, name="wo")(attended)
        y = RMSNorm(name="ffn_norm")(x)
        hidden = nn.silu(dense(c.hidden, name="w1")(y)) * dense(c.hidden, name="w3")(y)
        return x + dense(c.width, kernel_init=out, name="w2")(hidden), None


class Llama(nn.Module):
    """Llama-3-8B shape: ``nn.scan`` over the blocks, grouped-query attention, SwiGLU, untied head."""

    config: LlamaConfig

    @nn.compact
    def __call__(self, tokens):
        c = self.config
        x = nn.Embed(c.vocab, c.width, embedding_init=nn.initializers.normal(1.0), name="tok_embeddings")(tokens)
        split = c.bug != "shared_layer_keys"
        layers = nn.scan(LlamaBlock, variable_axes={"params": 0}, split_rngs={"params": split}, length=c.depth)(
            c, name="layers"
        )
        x, _ = layers(x, None)
        x = RMSNorm(name="norm")(x)
        return nn.Dense(c.vocab, use_bias=False, kernel_init=nn.initializers.normal(0.02), name="output")(x)


class NnxLlamaBlock(nnx.Module):
    def __init__(self, c: LlamaConfig, *, rngs: nnx.Rngs):
        head = c.width // c.heads
        dense = functools.partial(nnx.Linear, use_bias=False, kernel_init=nnx.initializers.normal(0.02), rngs=rngs)
        down = functools.partial(
            nnx.Linear, use_bias=False, kernel_init=nnx.initializers.normal(_down_std(c)), rngs=rngs
        )
        self.heads, self.kv_heads, self.head = c.heads, c.kv_heads, head
        self.attention_norm = nnx.RMSNorm(c.width, rngs=rngs)
        self.wq = dense(c.width, c.heads * head)
        self.wk = dense(c.width, c.kv_heads * head)
        self.wv = dense(c.width, c.kv_heads * head)
        self.wo = down(c.heads * head, c.width)
        self.ffn_norm = nnx.RMSNorm(c.width, rngs=rngs)
        self.w1 = dense(c.width, c.hidden)
        self.w3 = dense(c.width, c.hidden)
        self.w2 = down(c.hidden, c.width)

    def __call__(self, x):
        b, t, _ = x.shape
        y = self.attention_norm(x)
        q = self.wq(y).reshape(b, t, self.heads, self.head)
        k, v = (p(y).reshape(b, t, self.kv_heads, self.head) for p in (self.wk, self.wv))
        k, v = (jnp.repeat(a, self.heads // self.kv_heads, axis=-2) for a in (k, v))
        weights = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(self.head), -1)
        x = x + self.wo(jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, t, -1))
        y = self.ffn_norm(x)
        return x + self.w2(nnx.silu(self.w1(y)) * self.w3(y))


class NnxLlama(nnx.Module):
    """The Llama shape in nnx: the blocks made under ``nnx.vmap`` (``nnx.split_rngs`` gives each its
    key; left out with the "shared_layer_keys" bug) and run with ``nnx.scan``."""

    def __init__(self, c: LlamaConfig, *, rngs: nnx.Rngs):
        self.tok_embeddings = nnx.Embed(c.vocab, c.width, embedding_init=nnx.initializers.normal(1.0), rngs=rngs)

        if c.bug == "shared_layer_keys":

            @nnx.vmap(in_axes=None, out_axes=0, axis_size=c.depth)
            def create_blocks(rngs: nnx.Rngs):
                return NnxLlamaBlock(c, rngs=rngs)

        else:

            @nnx.split_rngs(splits=c.depth)
            @nnx.vmap(in_axes=(0,), out_axes=0)
            def create_blocks(rngs: nnx.Rngs):
                return NnxLlamaBlock(c, rngs=rngs)

        self.layers = create_blocks(rngs)
        self.norm = nnx.RMSNorm(c.width, rngs=rngs)
        self.output = nnx.Linear(c.width, c.vocab, use_bias=False, kernel_init=nnx.initializers.normal(0.02), rngs=rngs)

    def __call__(self, tokens):
        @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
        def forward(x, block):
            return block(x)

        return self.output(self.norm(forward(self.tok_embeddings(tokens), self.layers)))


def haiku_llama(c: LlamaConfig) -> hk.Transformed:
    """The Llama shape in Haiku: the blocks under ``hk.layer_stack`` (each layer its own key; the
    "shared_layer_keys" bug hands every layer one key drawn before the stack, with ``hk.with_rng``)."""
    head = c.width // c.heads

    def forward(tokens):
        normal, down = hk.initializers.RandomNormal(0.02), hk.initializers.RandomNormal(_down_std(c))
        x = hk.Embed(c.vocab, c.width, w_init=hk.initializers.RandomNormal(1.0), name="tok_embeddings")(tokens)
        shared = hk.next_rng_key() if c.bug == "shared_layer_keys" and hk.running_init() else None

        def block(x):
            b, t, _ = x.shape
            y = hk.RMSNorm(-1, name="attention_norm")(x)
            q = hk.Linear(c.heads * head, with_bias=False, w_init=normal, name="wq")(y).reshape(b, t, c.heads, head)
            k, v = (
                hk.Linear(c.kv_heads * head, with_bias=False, w_init=normal, name=name)(y).reshape(
                    b, t, c.kv_heads, head
                )
                for name in ("wk", "wv")
            )
            k, v = (jnp.repeat(a, c.heads // c.kv_heads, axis=-2) for a in (k, v))
            weights = jax.nn.softmax(jnp.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(head), -1)
            attended = jnp.einsum("bhqk,bkhd->bqhd", weights, v).reshape(b, t, -1)
            x = x + hk.Linear(c.width, with_bias=False, w_init=down, name="wo")(attended)
            y = hk.RMSNorm(-1, name="ffn_norm")(x)
            w1 = hk.Linear(c.hidden, with_bias=False, w_init=normal, name="w1")(y)
            w3 = hk.Linear(c.hidden, with_bias=False, w_init=normal, name="w3")(y)
            return x + hk.Linear(c.width, with_bias=False, w_init=down, name="w2")(jax.nn.silu(w1) * w3)

        def layer(x):
            if shared is None:
                return block(x)
            with hk.with_rng(shared):
                return block(x)

        x = hk.layer_stack(c.depth, name="layers")(layer)(x)
        x = hk.RMSNorm(-1, name="norm")(x)
        return hk.Linear(c.vocab, with_bias=False, w_init=hk.initializers.RandomNormal(0.02), name="output")(x)

    return hk.transform(forward)


class Bottleneck(nn.Module):
    filters: int
    strides: tuple[int, int] = (1, 1)

    @nn.compact
    def __call__(self, x):
        conv = functools.partial(nn.Conv, use_bias=False, kernel_init=nn.initializers.kaiming_normal())
        norm = functools.partial(nn.BatchNorm, use_running_average=True, momentum=0.9, epsilon=1e-5)
        residual = x
        y = nn.relu(norm()(conv(self.filters, (1, 1))(x)))
        y = nn.relu(norm()(conv(self.filters, (3, 3), self.strides)(y)))
        y = norm(scale_init=nn.initializers.zeros_init())(conv(self.filters * 4, (1, 1))(y))
        if residual.shape != y.shape:
            residual = norm(name="norm_proj")(conv(self.filters * 4, (1, 1), self.strides, name="conv_proj")(residual))
        return nn.relu(residual + y)


class ResNet50(nn.Module):
    """ResNet-50 v1.5 as in Flax's ``examples/imagenet``: 25.6 M parameters."""

    classes: int = 1000

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(64, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], use_bias=False, name="conv_init")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=True, name="bn_init")(x))
        x = nn.max_pool(x, (3, 3), (2, 2), padding="SAME")
        for stage, blocks in enumerate((3, 4, 6, 3)):
            for block in range(blocks):
                strides = (2, 2) if stage > 0 and block == 0 else (1, 1)
                x = Bottleneck(64 * 2**stage, strides)(x)
        return nn.Dense(self.classes)(jnp.mean(x, axis=(1, 2)))


GPT_35M = GPTConfig(vocab=32000, width=512, depth=4, heads=8)
GPT2_SMALL = GPTConfig()
LLAMA_1B = LlamaConfig(vocab=32000, width=2048, depth=18, heads=16, kv_heads=8, hidden=5632)
LLAMA_1_3B = LlamaConfig(vocab=32000, width=2048, depth=24, heads=16, kv_heads=8, hidden=5632)
LLAMA3_8B = LlamaConfig()


def tokens(batch: int = 1, length: int = 16):
    return jnp.zeros((batch, length), jnp.int32)


def parameter_count(model, *inputs) -> int:
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), *inputs))
    return sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(shapes["params"]))


# A module a test writes into a scratch project: a 164 MB embedding table, more than a 2 GB memory
# budget leaves for one value, so that its audit takes the one-value-at-a-time path.
BIG_TABLE_MODULE = """
import flax.linen as nn
import jax.numpy as jnp


class Table(nn.Module):
    @nn.compact
    def __call__(self, tokens):
        return nn.Embed(40000, 1024, embedding_init=nn.initializers.normal(0.02))(tokens)


def table():
    return Table(), jnp.zeros((1, 4), jnp.int32)
"""
