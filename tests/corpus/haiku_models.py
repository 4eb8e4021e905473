"""Haiku models in the style of Haiku's examples: the transformer language model (also with its
blocks in ``hk.layer_stack``), IMPALA's ResNet torso with an LSTM core, a VQ-VAE with
``VectorQuantizerEMA`` state, ``hk.nets.ResNet`` with BatchNorm state, an MLP with dropout and keys
handed around with ``hk.with_rng``, an ``hk.scan`` recurrent model, a bfloat16 MLP, the transformer's
``forward(tokens, is_training)`` called with the flag positionally, and residual blocks each built under
``hk.with_rng`` of one key (a bug)."""

from __future__ import annotations

import dataclasses

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from tests.corpus import Entry


@dataclasses.dataclass
class Transformer(hk.Module):
    num_heads: int
    num_layers: int
    key_size: int
    dropout_rate: float
    widening_factor: int = 4
    name: str | None = None

    def __call__(self, embeddings, *, is_training: bool):
        initializer = hk.initializers.VarianceScaling(2 / self.num_layers)
        dropout_rate = self.dropout_rate if is_training else 0.0
        h = embeddings
        _, seq_len, model_size = embeddings.shape
        mask = jnp.tril(np.ones((1, 1, seq_len, seq_len)))
        for _ in range(self.num_layers):
            attn_block = hk.MultiHeadAttention(
                num_heads=self.num_heads, key_size=self.key_size, model_size=model_size, w_init=initializer
            )
            h_norm = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(h)
            h_attn = attn_block(h_norm, h_norm, h_norm, mask=mask)
            h = h + hk.dropout(hk.next_rng_key(), dropout_rate, h_attn)
            h_norm = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(h)
            dense = hk.Sequential(
                [
                    hk.Linear(self.widening_factor * model_size, w_init=initializer),
                    jax.nn.gelu,
                    hk.Linear(model_size, w_init=initializer),
                ]
            )
            h = h + hk.dropout(hk.next_rng_key(), dropout_rate, dense(h_norm))
        return hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(h)


def language_model(tokens, vocab_size=64, d_model=32, is_training=True):
    embed_init = hk.initializers.TruncatedNormal(stddev=0.02)
    token_embedding_map = hk.Embed(vocab_size, d_model, w_init=embed_init)
    token_embs = token_embedding_map(tokens)
    positional_embeddings = hk.get_parameter("positional_embeddings", [tokens.shape[1], d_model], init=embed_init)
    h = Transformer(num_heads=4, num_layers=2, key_size=8, dropout_rate=0.1)(
        token_embs + positional_embeddings, is_training=is_training
    )
    return hk.Linear(vocab_size)(h)


def stacked_language_model(tokens, d_model=32, num_layers=3, is_training=True):
    x = hk.Embed(64, d_model, w_init=hk.initializers.TruncatedNormal(0.02))(tokens)

    def block(h):
        attn = hk.MultiHeadAttention(num_heads=4, key_size=8, w_init=hk.initializers.VarianceScaling(2 / num_layers))
        h_norm = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(h)
        h = h + hk.dropout(hk.next_rng_key(), 0.1 if is_training else 0.0, attn(h_norm, h_norm, h_norm))
        mlp = hk.nets.MLP(
            [4 * d_model, d_model], w_init=hk.initializers.VarianceScaling(2 / num_layers), activation=jax.nn.gelu
        )
        return h + mlp(hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(h))

    x = hk.layer_stack(num_layers)(block)(x)
    return hk.Linear(64)(hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(x))


class ResidualBlock(hk.Module):
    def __init__(self, num_channels, name=None):
        super().__init__(name=name)
        self._num_channels = num_channels

    def __call__(self, x):
        main_branch = hk.Sequential(
            [
                jax.nn.relu,
                hk.Conv2D(self._num_channels, kernel_shape=[3, 3], stride=[1, 1]),
                jax.nn.relu,
                hk.Conv2D(self._num_channels, kernel_shape=[3, 3], stride=[1, 1]),
            ]
        )
        return main_branch(x) + x


def impala_torso(x):
    for i, (num_channels, num_blocks) in enumerate([(8, 2), (16, 2)]):
        x = hk.Conv2D(num_channels, kernel_shape=[3, 3], stride=[1, 1], padding="SAME", name=f"conv_{i}")(x)
        x = hk.max_pool(x, window_shape=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding="SAME")
        for j in range(num_blocks):
            x = ResidualBlock(num_channels, name=f"residual_{i}_{j}")(x)
    x = jax.nn.relu(hk.Flatten()(x))
    return jax.nn.relu(hk.Linear(64)(x))


def impala_agent(frames):
    """The IMPALA network: a ResNet torso per step, an LSTM over time, policy and value heads."""
    batch = frames.shape[1]
    torso = hk.BatchApply(impala_torso)(frames)
    core = hk.LSTM(32)
    outputs, _ = hk.dynamic_unroll(core, torso, core.initial_state(batch))
    logits = hk.Linear(6, name="policy_logits")(outputs)
    value = hk.Linear(1, name="baseline")(outputs)
    return logits, value


def vqvae(x, is_training=True):
    encoder = hk.Sequential(
        [hk.Conv2D(16, 4, stride=2), jax.nn.relu, hk.Conv2D(16, 4, stride=2), jax.nn.relu, hk.Conv2D(8, 1)]
    )
    vq = hk.nets.VectorQuantizerEMA(embedding_dim=8, num_embeddings=32, commitment_cost=0.25, decay=0.99)
    decoder = hk.Sequential([hk.Conv2DTranspose(16, 4, stride=2), jax.nn.relu, hk.Conv2DTranspose(3, 4, stride=2)])
    quantized = vq(encoder(x), is_training=is_training)["quantize"]
    return decoder(quantized)


def resnet(x, is_training=True):
    net = hk.nets.ResNet(
        blocks_per_group=(1, 1, 1, 1), num_classes=10, bottleneck=False, channels_per_group=(8, 16, 32, 64)
    )
    return net(x, is_training=is_training)


def mlp_with_handed_keys(x):
    """Dropout during init, a sub-network given its own key with hk.with_rng, keys split by hand."""
    x = hk.nets.MLP([32, 32], activate_final=True)(x, dropout_rate=0.1, rng=hk.next_rng_key())
    key_a, key_b = jax.random.split(hk.next_rng_key())
    with hk.with_rng(key_a):
        a = hk.Linear(16, w_init=hk.initializers.RandomNormal(0.05), name="branch_a")(x)
    with hk.with_rng(key_b):
        b = hk.Linear(16, w_init=hk.initializers.RandomUniform(-0.1, 0.1), name="branch_b")(x)
    return hk.Linear(2, w_init=hk.initializers.Orthogonal(), name="head")(a + b)


def scanned_rnn(xs):
    """A GRU applied with hk.scan (its params are made in the unrolled first step), then a head."""
    core = hk.GRU(16)

    def step(state, x):
        out, state = core(x, state)
        return state, out

    _, outs = hk.scan(step, core.initial_state(xs.shape[1]), xs)
    return hk.Linear(4, b_init=hk.initializers.RandomNormal(0.01))(outs)


def bf16_mlp(x):
    """A mixed-precision MLP: Haiku makes a layer's params in its input's dtype, here bfloat16."""
    x = x.astype(jnp.bfloat16)
    x = jax.nn.gelu(hk.Linear(256, name="fc1")(x))
    x = jax.nn.gelu(hk.Linear(128, w_init=hk.initializers.VarianceScaling(2.0, "fan_in", "uniform"), name="fc2")(x))
    return hk.Linear(8, w_init=hk.initializers.RandomNormal(0.02), name="head")(x)


def lm_forward(tokens, is_training):
    """The Haiku transformer example's forward function as it is transformed and called:
    ``forward(tokens, is_training)``, the flag passed positionally, the embedding tied to the output."""
    vocab_size, d_model = 128, 32
    embed = hk.Embed(vocab_size, d_model, w_init=hk.initializers.TruncatedNormal(stddev=0.02), name="embed")
    h = embed(tokens)
    h = h + hk.get_parameter(
        "positional_embeddings", [tokens.shape[-1], d_model], init=hk.initializers.TruncatedNormal(stddev=0.02)
    )
    h = Transformer(num_heads=4, num_layers=2, key_size=8, dropout_rate=0.1, name="transformer")(
        h, is_training=is_training
    )
    return h @ embed.embeddings.T


def sync_batchnorm_net(x, is_training):
    """A convnet whose BatchNorm averages its statistics over the devices of a pmap (Haiku's ImageNet
    example: ``cross_replica_axis="i"``), called as ``f(images, is_training)``."""
    for i, channels in enumerate((8, 16)):
        x = hk.Conv2D(channels, 3, stride=2, with_bias=False, name=f"conv_{i}")(x)
        x = hk.BatchNorm(True, True, decay_rate=0.9, cross_replica_axis="i", name=f"bn_{i}")(x, is_training)
        x = jax.nn.relu(x)
    return hk.Linear(10, w_init=jnp.zeros, name="logits")(jnp.mean(x, axis=(1, 2)))


def blocks_with_one_key(x, num_blocks=3):
    """The bug: each residual block is built under ``hk.with_rng`` of one key drawn before the loop
    (meant to make the blocks reproducible), so every block draws the same parameters."""
    x = hk.Linear(32, name="embed")(x)
    block_key = hk.next_rng_key()
    for i in range(num_blocks):
        with hk.with_rng(block_key):
            mlp = hk.nets.MLP([64, 32], w_init=hk.initializers.VarianceScaling(2.0), name=f"block_{i}")
            x = x + mlp(hk.LayerNorm(-1, True, True, name=f"norm_{i}")(x))
    return hk.Linear(4, name="head")(x)


def _token_ids(batch=2, length=8, vocab=128):
    return jnp.asarray(np.random.default_rng(0).integers(0, vocab, (batch, length)), jnp.int32)


ENTRIES = [
    Entry("haiku-transformer-lm", lambda: (hk.transform(language_model), (jnp.ones((2, 8), jnp.int32),), {"rng": 0})),
    Entry(
        "haiku-layer-stack-lm",
        lambda: (hk.transform(stacked_language_model), (jnp.ones((2, 8), jnp.int32),), {"rng": 1}),
    ),
    Entry("haiku-impala", lambda: (hk.transform(impala_agent), (jnp.ones((3, 2, 16, 16, 3)),), {"rng": 2})),
    Entry("haiku-vqvae-ema", lambda: (hk.transform_with_state(vqvae), (jnp.ones((2, 16, 16, 3)),), {"rng": 3})),
    Entry("haiku-resnet-batchnorm", lambda: (hk.transform_with_state(resnet), (jnp.ones((2, 32, 32, 3)),), {"rng": 4})),
    Entry("haiku-handed-keys", lambda: (hk.transform(mlp_with_handed_keys), (jnp.ones((2, 8)),), {"rng": 5})),
    Entry("haiku-scanned-gru", lambda: (hk.transform(scanned_rnn), (jnp.ones((5, 2, 8)),), {"rng": 6})),
    Entry(
        "haiku-bf16-mlp",
        lambda: (hk.transform(bf16_mlp), (jnp.ones((2, 64)),), {"rng": 7}),
        known=dict.fromkeys(["fc1/w", "fc2/w", "head/w"], "haiku-low-precision-sampling"),
    ),
    Entry("haiku-lm-is-training-positional", lambda: (hk.transform(lm_forward), (_token_ids(), True), {"rng": 8})),
    Entry(
        "haiku-blocks-under-one-with-rng",
        lambda: (hk.transform(blocks_with_one_key), (jnp.ones((2, 8)),), {"rng": 9}),
        flagged=dict.fromkeys(
            [f"block_{i}/~/linear_{j}/w" for i in range(3) for j in (0, 1)], "the framework handed both the same key"
        ),
    ),
    Entry(
        "haiku-batchnorm-cross-replica",
        lambda: (hk.transform_with_state(sync_batchnorm_net), (jnp.ones((2, 16, 16, 3)), True), {"rng": 10}),
    ),
]

# models that initcheck got wrong (a false alarm, a crash or a miss): each runs in tests/test_corpus.py as
# xfail(strict=True) with its reason, and joins ENTRIES when initcheck is fixed (none today)
XFAIL: list = []
