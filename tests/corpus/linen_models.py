"""Flax linen models in the style of big_vision (ViT with ``nn.scan`` over blocks, Mixer), MaxText and
t5x (partitioned ``DenseGeneral`` with ``nd_dense_init``, scanned decoder layers), Flax's wmt/lm1b
examples (sinusoidal and learned position embeddings, dropout, decode cache), Flax's imagenet
ResNet (BatchNorm, also reduced over a pmap axis name in training mode), RL ensembles (``nn.vmap``),
``nn.remat_scan``, ``nn.jit`` and recurrent cells, a Gemma-style language model fed int32 tokens with a
positional ``train`` flag, orthogonal kernels drawn flat by ``DenseGeneral`` and
``MultiHeadDotProductAttention``, and blocks scanned with the params stream not split (a bug)."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import initcheck
from initcheck import laws
from tests.corpus import Entry

# --- big_vision-style ViT with the encoder blocks scanned ----------------------------------------


class MlpBlock(nn.Module):
    mlp_dim: int | None = None
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x, deterministic=True):
        inits = dict(kernel_init=nn.initializers.xavier_uniform(), bias_init=nn.initializers.normal(stddev=1e-6))
        d = x.shape[-1]
        x = nn.Dense(self.mlp_dim or 4 * d, **inits)(x)
        x = nn.gelu(x)
        x = nn.Dropout(rate=self.dropout)(x, deterministic)
        return nn.Dense(d, **inits)(x)


class Encoder1DBlock(nn.Module):
    mlp_dim: int | None = None
    num_heads: int = 4
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x, deterministic=True):
        y = nn.LayerNorm()(x)
        y = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads, kernel_init=nn.initializers.xavier_uniform(), deterministic=deterministic
        )(y, y)
        x = x + nn.Dropout(rate=self.dropout)(y, deterministic)
        y = nn.LayerNorm()(x)
        y = MlpBlock(mlp_dim=self.mlp_dim, dropout=self.dropout)(y, deterministic)
        return x + nn.Dropout(rate=self.dropout)(y, deterministic), None


class Encoder(nn.Module):
    depth: int
    mlp_dim: int | None = None
    num_heads: int = 4
    dropout: float = 0.0
    scan: bool = True

    @nn.compact
    def __call__(self, x, deterministic=True):
        if self.scan:
            block = nn.remat(Encoder1DBlock, prevent_cse=False, static_argnums=(2,))
            x, _ = nn.scan(
                block,
                variable_axes={"params": 0},
                split_rngs={"params": True, "dropout": True},
                in_axes=nn.broadcast,
                length=self.depth,
            )(
                name="encoderblock", mlp_dim=self.mlp_dim, num_heads=self.num_heads, dropout=self.dropout
            )(x, deterministic)
        else:
            for lyr in range(self.depth):
                x, _ = Encoder1DBlock(
                    name=f"encoderblock_{lyr}", mlp_dim=self.mlp_dim, num_heads=self.num_heads, dropout=self.dropout
                )(x, deterministic)
        return nn.LayerNorm(name="encoder_norm")(x)


class MAPHead(nn.Module):
    mlp_dim: int | None = None
    num_heads: int = 4

    @nn.compact
    def __call__(self, x):
        n, _, d = x.shape
        probe = self.param("probe", nn.initializers.xavier_uniform(), (1, 1, d), x.dtype)
        probe = jnp.tile(probe, [n, 1, 1])
        x = nn.MultiHeadDotProductAttention(num_heads=self.num_heads, kernel_init=nn.initializers.xavier_uniform())(
            probe, x
        )
        y = nn.LayerNorm()(x)
        return (x + MlpBlock(mlp_dim=self.mlp_dim)(y))[:, 0]


class ViT(nn.Module):
    num_classes: int = 10
    patch_size: Sequence[int] = (4, 4)
    width: int = 32
    depth: int = 3
    mlp_dim: int = 64
    num_heads: int = 4
    pool_type: str = "map"
    dropout: float = 0.1
    scan: bool = True

    @nn.compact
    def __call__(self, image, *, train=False):
        x = nn.Conv(self.width, self.patch_size, strides=self.patch_size, padding="VALID", name="embedding")(image)
        n, h, w, c = x.shape
        x = jnp.reshape(x, [n, h * w, c])
        x = x + self.param("pos_embedding", nn.initializers.normal(stddev=1 / np.sqrt(c)), (1, h * w, c), x.dtype)
        if self.pool_type == "tok":
            cls = self.param("cls", nn.initializers.zeros, (1, 1, c), x.dtype)
            x = jnp.concatenate([jnp.tile(cls, [n, 1, 1]), x], axis=1)
        x = nn.Dropout(rate=self.dropout)(x, not train)
        x = Encoder(
            depth=self.depth,
            mlp_dim=self.mlp_dim,
            num_heads=self.num_heads,
            dropout=self.dropout,
            scan=self.scan,
            name="Transformer",
        )(x, deterministic=not train)
        x = MAPHead(num_heads=self.num_heads, mlp_dim=self.mlp_dim)(x) if self.pool_type == "map" else x[:, 0]
        return nn.Dense(self.num_classes, name="head", kernel_init=nn.initializers.zeros)(x)


# --- big_vision-style MLP-Mixer ---------------------------------------------------------------------


class MixerMlp(nn.Module):
    mlp_dim: int

    @nn.compact
    def __call__(self, x):
        y = nn.gelu(nn.Dense(self.mlp_dim)(x))
        return nn.Dense(x.shape[-1])(y)


class MixerBlock(nn.Module):
    tokens_mlp_dim: int
    channels_mlp_dim: int

    @nn.compact
    def __call__(self, x):
        y = jnp.swapaxes(nn.LayerNorm()(x), 1, 2)
        y = jnp.swapaxes(MixerMlp(self.tokens_mlp_dim, name="token_mixing")(y), 1, 2)
        x = x + y
        return x + MixerMlp(self.channels_mlp_dim, name="channel_mixing")(nn.LayerNorm()(x))


class MlpMixer(nn.Module):
    num_blocks: int = 2
    hidden_dim: int = 32

    @nn.compact
    def __call__(self, image):
        x = nn.Conv(self.hidden_dim, (4, 4), strides=(4, 4), name="stem")(image)
        x = x.reshape(x.shape[0], -1, x.shape[-1])
        for _ in range(self.num_blocks):
            x = MixerBlock(16, 64)(x)
        x = nn.LayerNorm(name="pre_head_layer_norm")(x).mean(axis=1)
        return nn.Dense(10, kernel_init=nn.initializers.zeros, name="head")(x)


# --- MaxText / t5x style: logically partitioned layers, nd_dense_init, scanned decoder layers --------


def nd_dense_init(scale, mode, distribution):
    """Variance scaling whose in/out axes are given at call time (t5x, MaxText)."""

    def init_fn(key, shape, dtype, in_axis, out_axis):
        fn = jax.nn.initializers.variance_scaling(scale, mode, distribution, in_axis, out_axis)
        return fn(key, shape, dtype)

    return init_fn


default_embed_init = nn.initializers.variance_scaling(1.0, "fan_in", "normal", out_axis=0)


def _canonicalize(x):
    return tuple(x) if isinstance(x, Sequence) else (x,)


class DenseGeneral(nn.Module):
    features: int | Sequence[int]
    axis: int | Sequence[int] = -1
    weight_dtype: jnp.dtype = jnp.float32
    kernel_init: object = nd_dense_init(1.0, "fan_in", "truncated_normal")
    kernel_axes: tuple[str, ...] = ()
    use_bias: bool = False

    @nn.compact
    def __call__(self, inputs):
        features, axis = _canonicalize(self.features), _canonicalize(self.axis)
        axis = tuple(a % inputs.ndim for a in axis)
        kernel_shape = tuple(inputs.shape[a] for a in axis) + features
        kernel_in_axis = np.arange(len(axis))
        kernel_out_axis = np.arange(len(axis), len(axis) + len(features))
        kernel = self.param(
            "kernel",
            nn.with_logical_partitioning(self.kernel_init, self.kernel_axes),
            kernel_shape,
            self.weight_dtype,
            kernel_in_axis,
            kernel_out_axis,
        )
        contract = (axis, tuple(range(len(axis))))
        out = jax.lax.dot_general(inputs, kernel.astype(inputs.dtype), (contract, ((), ())))
        if self.use_bias:
            bias = self.param(
                "bias",
                nn.with_logical_partitioning(nn.initializers.zeros_init(), self.kernel_axes[-1:]),
                features,
                self.weight_dtype,
            )
            out = out + bias
        return out


class RMSNorm(nn.Module):
    epsilon: float = 1e-6
    scale_init: object = nn.initializers.ones

    @nn.compact
    def __call__(self, x):
        var = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
        scale = self.param(
            "scale", nn.with_logical_partitioning(self.scale_init, ("norm",)), (x.shape[-1],), jnp.float32
        )
        return x * jax.lax.rsqrt(var + self.epsilon) * scale


class Embed(nn.Module):
    num_embeddings: int
    features: int

    @nn.compact
    def __call__(self, ids):
        embedding = self.param(
            "embedding",
            nn.with_logical_partitioning(default_embed_init, ("vocab", "embed")),
            (self.num_embeddings, self.features),
            jnp.float32,
        )
        return jnp.take(embedding, ids, axis=0)


class Attention(nn.Module):
    num_heads: int
    head_dim: int

    @nn.compact
    def __call__(self, x):
        proj = functools.partial(
            DenseGeneral, features=(self.num_heads, self.head_dim), axis=-1, kernel_axes=("embed", "heads", "kv")
        )
        q, k, v = proj(name="query")(x), proj(name="key")(x), proj(name="value")(x)
        logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(self.head_dim)
        y = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(logits), v)
        return DenseGeneral(x.shape[-1], axis=(-2, -1), kernel_axes=("heads", "kv", "embed"), name="out")(y)


class DecoderLayer(nn.Module):
    num_heads: int = 4
    head_dim: int = 8
    mlp_dim: int = 64
    dropout_rate: float = 0.1

    @nn.compact
    def __call__(self, x, deterministic):
        y = Attention(self.num_heads, self.head_dim, name="self_attention")(RMSNorm(name="pre_self_attention_norm")(x))
        x = x + nn.Dropout(self.dropout_rate, broadcast_dims=(-2,))(y, deterministic=deterministic)
        y = RMSNorm(name="post_self_attention_norm")(x)
        h = DenseGeneral(self.mlp_dim, kernel_axes=("embed", "mlp"), name="wi_0")(y)
        g = DenseGeneral(self.mlp_dim, kernel_axes=("embed", "mlp"), name="wi_1")(y)
        y = DenseGeneral(x.shape[-1], kernel_axes=("mlp", "embed"), name="wo")(nn.silu(h) * g)
        return x + nn.Dropout(self.dropout_rate)(y, deterministic=deterministic), None


class Decoder(nn.Module):
    vocab_size: int = 64
    emb_dim: int = 32
    num_layers: int = 3
    scan_layers: bool = True

    @nn.compact
    def __call__(self, ids, deterministic=True):
        x = Embed(self.vocab_size, self.emb_dim, name="token_embedder")(ids)
        layer = nn.remat(DecoderLayer, prevent_cse=not self.scan_layers, static_argnums=(2,))
        if self.scan_layers:
            x, _ = nn.scan(
                layer,
                variable_axes={"params": 0, "cache": 0},
                split_rngs={"params": True, "dropout": True},
                in_axes=(nn.broadcast,),
                length=self.num_layers,
                metadata_params={nn.PARTITION_NAME: "layers"},
            )(name="layers")(x, deterministic)
        else:
            for i in range(self.num_layers):
                x, _ = layer(name=f"layers_{i}")(x, deterministic)
        x = RMSNorm(name="decoder_norm")(x)
        return DenseGeneral(self.vocab_size, kernel_axes=("embed", "vocab"), name="logits_dense")(x)


# --- Flax wmt / lm1b example style ----------------------------------------------------------------


def sincos_table(shape, dtype=np.float32, max_scale=10_000.0):
    """The sinusoidal position table of shape (1, max_len, d): sin in the first half of the
    features, cos in the second (Flax's wmt example), computed in float64."""
    _, max_len, d = shape
    position = np.arange(max_len)[:, None]
    div_term = np.exp(np.arange(0, d // 2) * -(np.log(max_scale) / (d // 2 - 1)))
    pe = np.zeros((max_len, d))
    pe[:, : d // 2] = np.sin(position * div_term)
    pe[:, d // 2 : 2 * (d // 2)] = np.cos(position * div_term)
    return pe[None]


def sinusoidal_init(max_len=2048):
    @initcheck.expects(laws.Deterministic(sincos_table, ulps=1))
    def init(key, shape, dtype=np.float32):
        del key
        return jnp.asarray(sincos_table(shape), dtype)

    return init


class AddPositionEmbs(nn.Module):
    max_len: int = 32
    posemb_init: object = None

    @nn.compact
    def __call__(self, inputs):
        shape = (1, self.max_len, inputs.shape[-1])
        init = self.posemb_init or sinusoidal_init(max_len=self.max_len)
        pe = self.param("pos_embedding", init, shape)
        return inputs + pe[:, : inputs.shape[1], :]


class EncoderDecoderBlock(nn.Module):
    qkv_dim: int = 32
    num_heads: int = 4
    mlp_dim: int = 64
    dropout_rate: float = 0.1
    decode: bool = False

    @nn.compact
    def __call__(self, x, deterministic=True):
        y = nn.LayerNorm()(x)
        y = nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads,
            qkv_features=self.qkv_dim,
            kernel_init=nn.initializers.xavier_uniform(),
            bias_init=nn.initializers.normal(stddev=1e-6),
            use_bias=False,
            broadcast_dropout=False,
            dropout_rate=self.dropout_rate,
            deterministic=deterministic,
            decode=self.decode,
        )(y, y)
        x = x + nn.Dropout(rate=self.dropout_rate)(y, deterministic=deterministic)
        y = MlpBlock(mlp_dim=self.mlp_dim, dropout=self.dropout_rate)(nn.LayerNorm()(x), deterministic)
        return x + y


class TransformerLM(nn.Module):
    vocab_size: int = 64
    emb_dim: int = 32
    num_layers: int = 2
    learned_posemb: bool = False
    decode: bool = False

    @nn.compact
    def __call__(self, ids, *, train=False):
        embed = nn.Embed(self.vocab_size, self.emb_dim, embedding_init=nn.initializers.normal(stddev=1.0))
        x = embed(ids)
        posemb = nn.initializers.normal(stddev=0.02) if self.learned_posemb else None
        x = AddPositionEmbs(posemb_init=posemb, name="posembed_input")(x)
        x = nn.Dropout(rate=0.1)(x, deterministic=not train)
        for lyr in range(self.num_layers):
            x = EncoderDecoderBlock(decode=self.decode, name=f"encoderdecoderblock_{lyr}")(x, deterministic=not train)
        x = nn.LayerNorm(name="encoderdecoder_norm")(x)
        return embed.attend(x)


# --- Flax imagenet-example ResNet -----------------------------------------------------------------


class ResNetBlock(nn.Module):
    filters: int
    conv: object
    norm: object
    strides: tuple = (1, 1)

    @nn.compact
    def __call__(self, x):
        residual = x
        y = nn.relu(self.norm()(self.conv(self.filters, (3, 3), self.strides)(x)))
        y = self.norm(scale_init=nn.initializers.zeros_init())(self.conv(self.filters, (3, 3))(y))
        if residual.shape != y.shape:
            residual = self.norm(name="norm_proj")(
                self.conv(self.filters, (1, 1), self.strides, name="conv_proj")(residual)
            )
        return nn.relu(residual + y)


class ResNet(nn.Module):
    stage_sizes: Sequence[int] = (1, 1)
    num_filters: int = 16
    num_classes: int = 10

    @nn.compact
    def __call__(self, x, train=True):
        conv = functools.partial(nn.Conv, use_bias=False)
        norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5)
        x = nn.relu(
            norm(name="bn_init")(conv(self.num_filters, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], name="conv_init")(x))
        )
        for i, block_size in enumerate(self.stage_sizes):
            for j in range(block_size):
                strides = (2, 2) if i > 0 and j == 0 else (1, 1)
                x = ResNetBlock(self.num_filters * 2**i, conv=conv, norm=norm, strides=strides)(x)
        return nn.Dense(self.num_classes)(jnp.mean(x, axis=(1, 2)))


# --- ensembles, remat_scan, jit, recurrent cells, bf16, random buffers -----------------------------


class QNetwork(nn.Module):
    hidden: Sequence[int] = (32, 32)

    @nn.compact
    def __call__(self, obs):
        for h in self.hidden:
            obs = nn.relu(nn.Dense(h, kernel_init=nn.initializers.he_uniform())(obs))
        return nn.Dense(1, kernel_init=nn.initializers.uniform(3e-3))(obs)


class EnsembleCritic(nn.Module):
    ensemble_size: int = 5

    @nn.compact
    def __call__(self, obs):
        ensemble = nn.vmap(
            QNetwork,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.ensemble_size,
        )
        return ensemble()(obs)


class DeepMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(32)(x)
        x = nn.remat_scan(nn.Dense, lengths=(2, 3))(32, name="stack")(x)
        return nn.Dense(4)(x)


class JittedBlocks(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Dense(32, name="in_proj")(x)
        for i in range(2):
            x = nn.jit(MlpBlock)(mlp_dim=48, name=f"jit_block_{i}")(x)
        return nn.LayerNorm()(x)


class Seq2Vec(nn.Module):
    hidden: int = 32

    @nn.compact
    def __call__(self, x):
        x = nn.RNN(nn.OptimizedLSTMCell(self.hidden), name="lstm")(x)
        x = nn.RNN(nn.GRUCell(self.hidden), name="gru")(x)
        return nn.Dense(2)(x[:, -1])


class Bf16Tower(nn.Module):
    @nn.compact
    def __call__(self, ids):
        x = nn.Embed(128, 64, param_dtype=jnp.bfloat16, embedding_init=nn.initializers.normal(0.02))(ids)
        x = nn.Dense(64, param_dtype=jnp.bfloat16, dtype=jnp.bfloat16)(x)
        x = nn.LayerNorm(param_dtype=jnp.bfloat16)(x)
        return nn.Dense(8, param_dtype=jnp.bfloat16, kernel_init=nn.initializers.truncated_normal(0.02))(x)


class RandomFeatures(nn.Module):
    """A fixed random projection kept as a non-trainable variable (random Fourier features)."""

    num_features: int = 64

    @nn.compact
    def __call__(self, x):
        proj = self.variable(
            "constants",
            "projection",
            nn.initializers.normal(1.0),
            self.make_rng("params"),
            (x.shape[-1], self.num_features),
        )
        phase = self.variable(
            "constants", "phase", nn.initializers.uniform(2 * np.pi), self.make_rng("params"), (self.num_features,)
        )
        return nn.Dense(4)(jnp.cos(x @ proj.value + phase.value))


class ScannedBN(nn.Module):
    """Blocks with BatchNorm scanned over depth: batch_stats stacked like the params."""

    @nn.compact
    def __call__(self, x, train=True):
        class Block(nn.Module):
            @nn.compact
            def __call__(self, x, _):
                x = nn.Dense(16, use_bias=False)(x)
                return nn.relu(nn.BatchNorm(use_running_average=not train)(x)), None

        x, _ = nn.scan(Block, variable_axes={"params": 0, "batch_stats": 0}, split_rngs={"params": True}, length=3)()(
            x, None
        )
        return x


# --- Gemma-style language model (gemma's transformer.py / modules.py): int32 tokens, a positional bool ---


class GemmaEinsum(nn.Module):
    """Gemma's ``layers.Einsum``: one weight of a given shape, contracted by the einsum the caller
    names; its variance-scaling init is told which axes the einsum contracts (in_axis/out_axis)."""

    shape: tuple[int, ...]
    in_axis: int | Sequence[int] = 0
    out_axis: int | Sequence[int] = -1
    batch_axis: Sequence[int] = ()

    @nn.compact
    def __call__(self, eqn, x):
        init = nn.initializers.variance_scaling(
            1.0, "fan_in", "truncated_normal", self.in_axis, self.out_axis, self.batch_axis
        )
        return jnp.einsum(eqn, x, self.param("w", init, self.shape))


class GemmaRMSNorm(nn.Module):
    @nn.compact
    def __call__(self, x):
        scale = self.param("scale", nn.initializers.zeros_init(), (x.shape[-1],))
        var = jnp.mean(jnp.square(x), axis=-1, keepdims=True)
        return x * jax.lax.rsqrt(var + 1e-6) * (1 + scale)


class GemmaAttention(nn.Module):
    num_heads: int
    num_kv_heads: int
    features: int
    head_dim: int

    @nn.compact
    def __call__(self, x):
        q = GemmaEinsum((self.num_heads, self.features, self.head_dim), in_axis=1, out_axis=(0, 2), name="q_einsum")(
            "BTD,NDH->BTNH", x
        )
        k, v = GemmaEinsum(
            (2, self.num_kv_heads, self.features, self.head_dim),
            in_axis=2,
            out_axis=(1, 3),
            batch_axis=(0,),
            name="kv_einsum",
        )("BSD,CKDH->CBSKH", x)
        q = q * self.head_dim**-0.5
        logits = jnp.einsum("BTNH,BSNH->BTNS", q, jnp.repeat(k, self.num_heads // self.num_kv_heads, axis=2))
        mask = jnp.tril(jnp.ones((x.shape[1], x.shape[1]), bool))[None, :, None, :]
        probs = jax.nn.softmax(jnp.where(mask, logits, -2.3819763e38), axis=-1)
        encoded = jnp.einsum("BTNS,BSNH->BTNH", probs, jnp.repeat(v, self.num_heads // self.num_kv_heads, axis=2))
        out = GemmaEinsum((self.num_heads, self.head_dim, self.features), in_axis=(0, 1), out_axis=2, name="attn_vec")
        return out("BTNH,NHD->BTD", encoded)


class GemmaBlock(nn.Module):
    num_heads: int = 4
    num_kv_heads: int = 2
    embed_dim: int = 32
    head_dim: int = 8
    hidden_dim: int = 64
    dropout: float = 0.1

    @nn.compact
    def __call__(self, x, train: bool):
        y = GemmaAttention(self.num_heads, self.num_kv_heads, self.embed_dim, self.head_dim, name="attn")(
            GemmaRMSNorm(name="pre_attention_norm")(x)
        )
        x = x + nn.Dropout(self.dropout)(y, deterministic=not train)
        y = GemmaRMSNorm(name="pre_ffw_norm")(x)
        gate, up = GemmaEinsum(
            (2, self.embed_dim, self.hidden_dim), in_axis=1, out_axis=2, batch_axis=(0,), name="gating_einsum"
        )("BTD,CDF->CBTF", y)
        y = GemmaEinsum((self.hidden_dim, self.embed_dim), name="linear")("BTF,FD->BTD", nn.gelu(gate) * up)
        return x + nn.Dropout(self.dropout)(y, deterministic=not train)


class GemmaLM(nn.Module):
    """Gemma's shape: a scaled token embedding (tied with the output), RMSNorm blocks with grouped
    query attention and a gated FFW; ``__call__(tokens, train)`` takes the flag positionally."""

    vocab_size: int = 128
    embed_dim: int = 32
    num_layers: int = 2

    @nn.compact
    def __call__(self, tokens, train: bool):
        embedding = self.param("input_embedding", nn.initializers.normal(), (self.vocab_size, self.embed_dim))
        x = embedding[(tokens,)] * jnp.sqrt(self.embed_dim).astype(embedding.dtype)
        for i in range(self.num_layers):
            x = GemmaBlock(embed_dim=self.embed_dim, name=f"layer_{i}")(x, train)
        return jnp.dot(GemmaRMSNorm(name="final_norm")(x), embedding.T)


# --- Flax imagenet-example ResNet as it trains: BatchNorm reduced over a pmap axis, train=True ------


class BottleneckResNetBlock(nn.Module):
    filters: int
    conv: object
    norm: object
    act: object = nn.relu
    strides: tuple[int, int] = (1, 1)

    @nn.compact
    def __call__(self, x):
        residual = x
        y = self.act(self.norm()(self.conv(self.filters, (1, 1))(x)))
        y = self.act(self.norm()(self.conv(self.filters, (3, 3), self.strides)(y)))
        y = self.norm(scale_init=nn.initializers.zeros_init())(self.conv(self.filters * 4, (1, 1))(y))
        if residual.shape != y.shape:
            residual = self.norm(name="norm_proj")(
                self.conv(self.filters * 4, (1, 1), self.strides, name="conv_proj")(residual)
            )
        return self.act(residual + y)


class ImageNetResNet(nn.Module):
    """``nn.BatchNorm(axis_name="batch")``, written for ``jax.pmap(..., axis_name="batch")``."""

    stage_sizes: Sequence[int] = (1, 1)
    num_filters: int = 8
    num_classes: int = 10
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = True):
        conv = functools.partial(nn.Conv, use_bias=False, dtype=self.dtype)
        norm = functools.partial(
            nn.BatchNorm,
            use_running_average=not train,
            momentum=0.9,
            epsilon=1e-5,
            dtype=self.dtype,
            axis_name="batch",
        )
        x = conv(self.num_filters, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], name="conv_init")(x)
        x = nn.relu(norm(name="bn_init")(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for i, block_size in enumerate(self.stage_sizes):
            for j in range(block_size):
                strides = (2, 2) if i > 0 and j == 0 else (1, 1)
                x = BottleneckResNetBlock(self.num_filters * 2**i, conv=conv, norm=norm, strides=strides)(x)
        x = jnp.mean(x, axis=(1, 2))
        return jnp.asarray(nn.Dense(self.num_classes, dtype=self.dtype)(x), self.dtype)


# --- orthogonal kernels drawn flat (DenseGeneral, MultiHeadDotProductAttention), as RL torsos init ---


class OrthogonalTorso(nn.Module):
    """An agent's attention torso initialized orthogonally throughout, as PPO code bases do: the
    multi-head kernels are drawn flat ((in, heads * head_dim)) and reshaped by the layers."""

    heads: int = 4
    head_dim: int = 8

    @nn.compact
    def __call__(self, obs):
        ortho = nn.initializers.orthogonal(np.sqrt(2))
        x = nn.DenseGeneral((self.heads, self.head_dim), kernel_init=ortho, name="embed")(obs)
        x = nn.relu(x.reshape(*x.shape[:-2], -1))
        x = x + nn.MultiHeadDotProductAttention(
            num_heads=self.heads, kernel_init=nn.initializers.orthogonal(), name="attention"
        )(x, x)
        y = nn.DenseGeneral((2, 16), kernel_init=ortho, name="heads_in")(x)
        y = nn.DenseGeneral(8, axis=(-2, -1), kernel_init=nn.initializers.orthogonal(0.01), name="heads_out")(y)
        return nn.Dense(1, name="critic")(nn.tanh(y.mean(axis=-2)))


# --- blocks handed one key: nn.scan with the params stream not split ------------------------------


class UnsplitScanEncoder(nn.Module):
    """The bug: an encoder scanned over its blocks with ``split_rngs={"params": False}`` (copied from
    a scan that only needed dropout split): every block is initialized with the same key."""

    depth: int = 3

    @nn.compact
    def __call__(self, x, deterministic=True):
        x, _ = nn.scan(
            Encoder1DBlock,
            variable_axes={"params": 0},
            split_rngs={"params": False, "dropout": True},
            in_axes=nn.broadcast,
            length=self.depth,
        )(name="encoderblock", mlp_dim=64, num_heads=4)(x, deterministic)
        return nn.LayerNorm(name="encoder_norm")(x)


# --- true framework defects, which the audit must still flag --------------------------------------


class NamedDense(nn.Module):
    inner: str

    @nn.compact
    def __call__(self, x):
        return nn.Dense(32, name=self.inner)(x)


class CollidingPaths(nn.Module):
    """Modules named ab/cdef and abc/def: the same bytes are hashed under Flax's default config."""

    @nn.compact
    def __call__(self, x):
        return NamedDense("cdef", name="ab")(x) + NamedDense("def", name="abc")(x)


def _image(size=16):
    return jnp.ones((1, size, size, 3))


def _tokens(batch=2, length=8, vocab=128):
    return jnp.asarray(np.random.default_rng(0).integers(0, vocab, (batch, length)), jnp.int32)


ENTRIES = [
    Entry("linen-vit-scan", lambda: (ViT(), (_image(),), {"rng": {"params": 0, "dropout": 1}})),
    Entry("linen-vit-unscanned-tok", lambda: (ViT(scan=False, pool_type="tok", depth=2), (_image(),), {})),
    Entry("linen-mixer", lambda: (MlpMixer(), (_image(),), {})),
    Entry("linen-maxtext-decoder-scan", lambda: (Decoder(), (jnp.ones((2, 8), jnp.int32),), {})),
    Entry(
        "linen-maxtext-decoder-loop",
        lambda: (Decoder(scan_layers=False, num_layers=2), (jnp.ones((2, 8), jnp.int32),), {}),
    ),
    Entry("linen-wmt-sinusoidal", lambda: (TransformerLM(), (jnp.ones((2, 8), jnp.int32),), {})),
    Entry(
        "linen-lm1b-decode-cache",
        lambda: (
            TransformerLM(learned_posemb=True, decode=True, num_layers=1),
            (jnp.ones((2, 1), jnp.int32),),
            {"rng": {"params": 3, "dropout": 4}},
        ),
    ),
    Entry("linen-resnet-batchnorm", lambda: (ResNet(), (_image(32),), {})),
    Entry("linen-vmap-ensemble", lambda: (EnsembleCritic(), (jnp.ones((4, 6)),), {})),
    Entry("linen-remat-scan", lambda: (DeepMLP(), (jnp.ones((2, 8)),), {})),
    Entry("linen-jit-blocks", lambda: (JittedBlocks(), (jnp.ones((2, 8)),), {})),
    Entry("linen-rnn-cells", lambda: (Seq2Vec(), (jnp.ones((2, 5, 4)),), {})),
    Entry(
        "linen-bf16-params",
        lambda: (Bf16Tower(), (jnp.ones((2, 8), jnp.int32),), {}),
        known=dict.fromkeys(["Embed_0/embedding", "Dense_0/kernel", "Dense_1/kernel"], "jax-low-precision-sampling"),
    ),
    Entry("linen-random-features", lambda: (RandomFeatures(), (jnp.ones((2, 8)),), {})),
    Entry("linen-scanned-batchnorm", lambda: (ScannedBN(), (jnp.ones((4, 16)),), {})),
    Entry(
        "linen-dense-general-batch-dims",
        lambda: (nn.DenseGeneral(32, batch_dims=(0,)), (jnp.ones((8, 4, 64)),), {}),
        flagged={"kernel": "the law counts its batch axis 0 (8) in the fan: output variance x0.125"},
    ),
    Entry(
        "linen-path-collision",
        lambda: (CollidingPaths(), (jnp.ones((1, 32)),), {}),
        flagged={"ab/cdef/kernel": "2157", "abc/def/kernel": "2157", "ab/cdef/bias": "2157", "abc/def/bias": "2157"},
    ),
    Entry(
        "linen-gemma-lm-train-flag",
        lambda: (GemmaLM(), (_tokens(), True), {"rng": {"params": 0, "dropout": 1}}),
    ),
    Entry("linen-orthogonal-dense-general", lambda: (OrthogonalTorso(), (jnp.ones((2, 5, 12)),), {"rng": 2})),
    Entry(
        "linen-scan-params-not-split",
        lambda: (UnsplitScanEncoder(), (jnp.ones((2, 5, 32)),), {"rng": 3}),
        flagged=dict.fromkeys(
            [
                *(f"encoderblock/MlpBlock_0/Dense_{i}/{name}" for i in (0, 1) for name in ("kernel", "bias")),
                *(f"encoderblock/MultiHeadDotProductAttention_0/{p}/kernel" for p in ("query", "key", "value", "out")),
            ],
            "the transform hands every slice the same key",
        ),
    ),
    Entry(
        "linen-imagenet-resnet-axis-name",
        lambda: (
            initcheck.Model(ImageNetResNet(), args=(jnp.ones((2, 32, 32, 3)),), kwargs={"train": True}, rng=0),
            (),
            {},
        ),
    ),
]

# models that initcheck got wrong (a false alarm, a crash or a miss): each runs in tests/test_corpus.py as
# xfail(strict=True) with its reason, and joins ENTRIES when initcheck is fixed (none today)
XFAIL: list = []
