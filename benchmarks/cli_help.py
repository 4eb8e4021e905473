"""Median wall time of `initcheck --help` and of each `initcheck <subcommand> --help`, over 5 runs
each, in fresh processes (the console script's import and argument parsing: no JAX is imported
before the arguments are parsed).

Run: `python benchmarks/cli_help.py`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 5
COMMANDS = ([], ["report"], ["check"], ["audit"], ["list"], ["lock"])


def seconds(argv: list[str]) -> float:
    """The median wall time of `initcheck *argv --help` over RUNS fresh processes."""
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "from initcheck.cli import run; run()", *argv, "--help"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        times.append(time.perf_counter() - started)
    return statistics.median(times)


if __name__ == "__main__":
    for argv in COMMANDS:
        print(f"initcheck {' '.join([*argv, '--help'])}: {seconds(argv):.3f}s (median of {RUNS})")
