"""Power and false alarms of ``moments`` and ``distribution`` per dtype.

    python benchmarks/low_precision_power.py [--seeds 200] [--profile ci]

For float32, bfloat16 and float16 it prints: the MDE ``moments`` reports (the smallest relative
scale error detected with power 0.99, from the moments of the law rounded to the dtype), the
share of seeds that catch a 4% variance error (a normal initializer 1.02x too wide) and a normal
whose tails stop at 3.7 sd, and the false-alarm rate of correct low-precision initializers whose
mean is far from zero relative to their std (batch-norm style scales, 1 + 0.005 z and 1 + 0.002 z,
sampled in float32 and rounded; any of the five statistical properties failing counts), over
``--seeds`` seeds each.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

import initcheck
from initcheck import laws

SHAPE = (512, 512)  # one draw of 2^18 values: the ci profile's n


def _normal(std, mean=0.0):
    return lambda key, shape, dtype=jnp.float32: (mean + std * jax.random.normal(key, shape)).astype(dtype)


def _tail_cut(key, shape, dtype=jnp.float32):
    return (0.02 * jax.random.truncated_normal(key, -3.7, 3.7, shape)).astype(dtype)


def rate(init, law, dtype, properties, seeds, profile) -> tuple[float, float]:
    """(share of seeds where any of ``properties`` fails, the last MDE reported)."""
    failed, mde = 0, float("nan")
    for seed in range(seeds):
        report = initcheck.check(
            init, law, shapes=[SHAPE], dtypes=[dtype], properties=properties, seed=seed, profile=profile
        )
        failed += any(v.status in ("fail", "error") for v in report.verdicts)
        mde = next((v.mde for v in report.verdicts if v.mde is not None), mde)
    return failed / seeds, mde


ALL = ["independence", "key_sensitivity", "distribution", "moments", "precision"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--profile", default="ci")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"{args.seeds} seeds per figure, profile {args.profile}, {SHAPE[0] * SHAPE[1]} values per check")
    print(
        f"{'dtype':10} {'moments MDE':>12} {'4% variance':>12} {'3.7-sd tail':>12} "
        f"{'false alarms 1+0.005z':>22} {'1+0.002z':>10}"
    )
    for dtype in ("float32", "bfloat16", "float16"):
        wide, mde = rate(_normal(0.02 * 1.02), laws.Normal(0.02), dtype, ["moments"], args.seeds, args.profile)
        tail, _ = rate(_tail_cut, laws.Normal(0.02), dtype, ["distribution"], args.seeds, args.profile)
        alarms = [
            rate(_normal(std, 1.0), laws.Normal(std, mean=1.0), dtype, ALL, args.seeds, args.profile)[0]
            for std in (0.005, 0.002)
        ]
        print(
            f"{dtype:10} {100 * mde:11.2f}% {wide:12.1%} {tail:12.1%} {alarms[0]:22.1%} {alarms[1]:10.1%}", flush=True
        )
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
