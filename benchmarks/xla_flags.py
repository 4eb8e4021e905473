"""What XLA's compiler settings cost a check: one catalog entry checked under each XLA_FLAGS.

    python benchmarks/xla_flags.py                                  # jax.nn.initializers.he_normal(), ci profile
    python benchmarks/xla_flags.py --entry "haiku.initializers.Orthogonal()" --profile quick
    python benchmarks/xla_flags.py --flags="--xla_backend_optimization_level=0" --flags=""

Each setting runs in a fresh process (XLA reads its flags once, when the backend starts) and
prints the wall and CPU seconds of the check (imports excluded) and whether its verdicts match
those under the first setting. ``initcheck/_xla.py`` picks the command line's default from this.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from initcheck import _xla

SETTINGS = [
    _xla.FAST_COMPILE_SETTING,  # initcheck's default
    "--xla_backend_optimization_level=1 --xla_cpu_use_fusion_emitters=false",
    "--xla_backend_optimization_level=0 --xla_cpu_use_fusion_emitters=false",
    "--xla_backend_optimization_level=0",
    "--xla_backend_optimization_level=1",
    "--xla_backend_optimization_level=2",
    "",  # XLA's defaults
]

CHILD = """
import json, resource, sys, time
from initcheck import _catalog
entry = next(e for e in _catalog.catalog() if e.id == sys.argv[1])
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
wall, used = time.perf_counter(), cpu()
triage = _catalog.check_entry(entry, profile=sys.argv[2])
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": cpu() - used,
                  "verdicts": [(v.property, str(v.case.shape), v.case.dtype, v.status) for v in triage.report.verdicts]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entry", default="jax.nn.initializers.he_normal()", help="a catalog entry id")
    parser.add_argument("--profile", default="ci")
    parser.add_argument(
        "--flags",
        action="append",
        default=None,
        metavar="XLA_FLAGS",
        help="a setting to time (repeatable; default: the list in SETTINGS)",
    )
    args = parser.parse_args()
    print(f"checking {args.entry} (profile {args.profile}) under each XLA_FLAGS setting")
    print(f"{'wall s':>7} {'CPU s':>7}  verdicts   XLA_FLAGS")
    first = None
    for flags in args.flags or SETTINGS:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, args.entry, args.profile],
            capture_output=True,
            text=True,
            env={**os.environ, "XLA_FLAGS": flags},
            check=True,
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
        first = first or result["verdicts"]
        same = "same" if result["verdicts"] == first else "DIFFER"
        print(f"{result['wall']:>7.1f} {result['cpu']:>7.1f}  {same:<9}  {flags or '(none: XLA defaults)'}", flush=True)


if __name__ == "__main__":
    main()
