"""initcheck's own time in an audit against the framework's own eager init (issue 22's target:
initcheck's time <= the framework's init time).

    python benchmarks/audit_vs_init.py [--profile ci]

For Haiku's ``hk.nets.ResNet50`` and a linen ViT-S/16 (12 layers, width 384, 6 heads), each
measured in a fresh process (nothing compiled before): the framework's eager ``init`` alone (its
compiles included), and ``initcheck.audit`` of the same model (every property, the signal profile
included); initcheck's own time is the audit's wall time minus that init time (the audit runs the
init itself, twice: once more from another root key).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import flax.linen as nn
import haiku as hk
import jax
import jax.numpy as jnp

import initcheck
from initcheck import _xla


class EncoderBlock(nn.Module):
    @nn.compact
    def __call__(self, x):
        y = nn.MultiHeadDotProductAttention(num_heads=6, kernel_init=nn.initializers.xavier_uniform())(
            nn.LayerNorm()(x), nn.LayerNorm()(x)
        )
        x = x + y
        y = nn.Dense(1536, kernel_init=nn.initializers.xavier_uniform())(nn.LayerNorm()(x))
        return x + nn.Dense(384, kernel_init=nn.initializers.xavier_uniform())(nn.gelu(y))


class ViTS16(nn.Module):
    @nn.compact
    def __call__(self, image):
        x = nn.Conv(384, (16, 16), (16, 16), padding="VALID")(image)
        x = x.reshape(x.shape[0], -1, 384)
        x = x + self.param("pos_embedding", nn.initializers.normal(0.02), (1, x.shape[1], 384))
        for _ in range(12):
            x = EncoderBlock()(x)
        return nn.Dense(1000, kernel_init=nn.initializers.zeros_init())(nn.LayerNorm()(x[:, 0]))


def resnet50(x):
    return hk.nets.ResNet50(1000)(x, is_training=True)


MODELS = {
    "Haiku hk.nets.ResNet50, 224x224": lambda: hk.transform_with_state(resnet50),
    "linen ViT-S/16, 224x224": ViTS16,
}


def measure(name: str, part: str, profile: str) -> float:
    """Seconds of ``part`` (``init`` or ``audit``) of model ``name``, in this (fresh) process."""
    _xla.prefer_fast_compiles()
    model, x = MODELS[name](), jnp.ones((1, 224, 224, 3))
    started = time.perf_counter()
    if part == "init":
        jax.block_until_ready(model.init(jax.random.key(0), x))
    else:
        initcheck.audit(model, x, rng=0, profile=profile)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--part", nargs=2, metavar=("MODEL", "PART"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        print(measure(*args.part, args.profile))
        return
    print(f"jax {jax.__version__}, {jax.devices()[0].platform}, profile {args.profile}, each part in a fresh process")
    print(f"{'model':<34} {'framework init':>15} {'audit':>8} {'initcheck own':>14}")
    for name in MODELS:
        times = []
        for part in ("init", "audit"):
            command = [sys.executable, __file__, "--profile", args.profile, "--part", name, part]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            times.append(float(done.stdout.strip().splitlines()[-1]))
        init, audit = times
        print(f"{name:<34} {init:>14.1f}s {audit:>7.1f}s {audit - init:>13.1f}s")


if __name__ == "__main__":
    main()
