"""Power and false alarms of the default ``ci`` settings, measured.

Prints, for float32 laws under the ``ci`` profile:
* the minimum detectable scale error (power 0.99) of the ``moments`` verdict, analytic and
  simulated: the share of seeds on which a normal initializer 2% (and 1%) too wide is caught;
* the empirical false-alarm rate: the share of seeds on which a *correct* initializer fails any
  statistical property (key_sensitivity, independence, bounds, distribution, moments), over
  ``--seeds`` seeds (default 200) and several laws, next to the Bonferroni bound;
* the time per check.

Usage: python benchmarks/power.py [--seeds 200]
"""

from __future__ import annotations

import argparse
import time

import jax

import initcheck
from initcheck import _profiles as profiles
from initcheck import _stats as stats
from initcheck import laws

STATISTICAL = ["key_sensitivity", "independence", "bounds", "distribution", "moments"]


def scaled_normal(factor):
    def init(key, shape, dtype):
        return factor * jax.random.normal(key, shape, dtype)

    return init


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=200)
    args = parser.parse_args()
    ci = profiles.get("ci")
    mde = stats.mde_scale(ci.n, 1.0, 3.0, ci.alpha / 2)
    print(f"ci profile: n={ci.n} values per case, alpha={ci.alpha:g} per verdict, device={jax.devices()[0]}")
    print(f"analytic minimum detectable scale error (normal law, power 0.99): {100 * mde:.2f}%")

    for factor in (1.02, 1.01):
        init, caught, started = scaled_normal(factor), 0, time.perf_counter()
        for seed in range(args.seeds):
            report = initcheck.check(init, laws.Normal(1.0), shapes=[(256, 128)], properties=["moments"], seed=seed)
            caught += not report.passed
        per = (time.perf_counter() - started) / args.seeds
        print(
            f"scale error {100 * (factor - 1):.0f}%: caught on {caught}/{args.seeds} seeds "
            f"({100 * caught / args.seeds:.1f}%), {per:.2f}s per moments check"
        )

    correct = [
        (
            "he_normal",
            jax.nn.initializers.he_normal(),
            laws.VarianceScaling(2.0, "fan_in", "truncated_normal"),
            (256, 128),
        ),
        (
            "glorot_uniform",
            jax.nn.initializers.glorot_uniform(),
            laws.VarianceScaling(1.0, "fan_avg", "uniform"),
            (3, 3, 16, 32),
        ),
        ("normal", jax.nn.initializers.normal(0.02), laws.Normal(0.02), (8, 8)),
    ]
    for name, init, law, shape in correct:
        alarms, verdicts, started = 0, 0, time.perf_counter()
        for seed in range(args.seeds):
            report = initcheck.check(init, law, shapes=[shape], properties=STATISTICAL, seed=seed)
            alarms += not report.passed
            verdicts += sum(v.statistical for v in report.verdicts)
        per = (time.perf_counter() - started) / args.seeds
        print(
            f"false alarms, correct {name} {shape}: {alarms}/{args.seeds} seeds "
            f"(Bonferroni bound per seed {verdicts / args.seeds * ci.alpha:.1e}), {per:.2f}s per check"
        )

    started = time.perf_counter()
    report = initcheck.check(
        jax.nn.initializers.lecun_normal(), laws.VarianceScaling(1.0, "fan_in", "truncated_normal")
    )
    print(
        f"full ci check (all properties, {len(report.verdicts)} verdicts, 3 cases, first compile included): "
        f"{time.perf_counter() - started:.1f}s; false-alarm bound {report.false_alarm_bound:.1e}"
    )


if __name__ == "__main__":
    main()
