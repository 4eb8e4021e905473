"""What the use-aware audit costs: ``initcheck.audit`` of realistic models with and without
``effective_fan`` and the signal profile.

    python benchmarks/audit_use.py [--profile ci]

Each model is audited three ways in one process, in this order: the properties of earlier
releases (derivation, the statistical properties, structure), then ``effective_fan`` alone (an
init, the trace of the forward pass and the walk of its jaxpr), then ``signal`` alone (an init, the
trace, one compile and run of the forward and backward pass). Prints seconds per model and mode,
and the layers the profile found.
"""

from __future__ import annotations

import argparse
import time

import flax.linen as nn
import jax
import jax.numpy as jnp

import initcheck
from initcheck import _xla

BEFORE = ["derivation", "independence", "bounds", "distribution", "moments", "structure"]


class Bottleneck(nn.Module):
    """The Flax imagenet example's bottleneck block (ResNet-50)."""

    filters: int
    strides: tuple = (1, 1)

    @nn.compact
    def __call__(self, x):
        conv = lambda f, k, s=(1, 1): nn.Conv(f, k, s, use_bias=False, padding="SAME")
        norm = lambda **kw: nn.BatchNorm(use_running_average=False, momentum=0.9, epsilon=1e-5, **kw)
        y = nn.relu(norm()(conv(self.filters, (1, 1))(x)))
        y = nn.relu(norm()(conv(self.filters, (3, 3), self.strides)(y)))
        y = norm(scale_init=nn.initializers.zeros_init())(conv(self.filters * 4, (1, 1))(y))
        if x.shape != y.shape:
            x = norm()(conv(self.filters * 4, (1, 1), self.strides)(x))
        return nn.relu(x + y)


class ResNet50(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Conv(64, (7, 7), (2, 2), padding=[(3, 3), (3, 3)], use_bias=False)(x)
        x = nn.relu(nn.BatchNorm(use_running_average=False)(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        for i, blocks in enumerate((3, 4, 6, 3)):
            for j in range(blocks):
                x = Bottleneck(64 * 2**i, (2, 2) if i > 0 and j == 0 else (1, 1))(x)
        return nn.Dense(1000)(jnp.mean(x, axis=(1, 2)))


class EncoderBlock(nn.Module):
    @nn.compact
    def __call__(self, x, _):
        y = nn.MultiHeadDotProductAttention(num_heads=12, kernel_init=nn.initializers.xavier_uniform())(
            nn.LayerNorm()(x), nn.LayerNorm()(x)
        )
        x = x + y
        y = nn.Dense(3072, kernel_init=nn.initializers.xavier_uniform())(nn.LayerNorm()(x))
        return x + nn.Dense(768, kernel_init=nn.initializers.xavier_uniform())(nn.gelu(y)), None


class ViTB(nn.Module):
    """big_vision's ViT-B/16 encoder with scan over its 12 layers."""

    @nn.compact
    def __call__(self, image):
        x = nn.Conv(768, (16, 16), (16, 16), padding="VALID")(image)
        x = x.reshape(x.shape[0], -1, 768)
        x = x + self.param("pos_embedding", nn.initializers.normal(0.02), (1, x.shape[1], 768))
        layers = nn.scan(EncoderBlock, variable_axes={"params": 0}, split_rngs={"params": True}, length=12)
        x, _ = layers()(x, None)
        return nn.Dense(1000, kernel_init=nn.initializers.zeros_init())(nn.LayerNorm()(x[:, 0]))


MODELS = {
    "linen ResNet-50, 224x224": (ResNet50(), jnp.ones((1, 224, 224, 3))),
    "linen ViT-B/16 (nn.scan over 12 layers), 224x224": (ViTB(), jnp.ones((1, 224, 224, 3))),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ci")
    args = parser.parse_args()
    _xla.prefer_fast_compiles()
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}, profile {args.profile}")
    print(f"{'model':<52} {'before':>8} {'effective_fan':>14} {'signal':>8} {'layers':>7}")
    for name, (model, x) in MODELS.items():
        seconds = []
        for properties in (BEFORE, ["effective_fan"], ["signal"]):
            started = time.perf_counter()
            report = initcheck.audit(model, x, rng=0, profile=args.profile, properties=properties)
            seconds.append(time.perf_counter() - started)
        layers = len(report.signal.layers) if report.signal is not None else 0
        print(f"{name:<52} {seconds[0]:>7.1f}s {seconds[1]:>13.1f}s {seconds[2]:>7.1f}s {layers:>7}")


if __name__ == "__main__":
    main()
