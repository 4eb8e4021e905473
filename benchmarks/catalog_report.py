"""How long ``initcheck report`` takes on the built-in catalog, and where the time goes.

    python benchmarks/catalog_report.py                       # runs the README's main job (ci profile) into a temp folder
    python benchmarks/catalog_report.py --from reports/conformance.json   # reads a report already made
    python benchmarks/catalog_report.py --compile-cache DIR   # other options go to `initcheck report`
    python benchmarks/catalog_report.py --fresh-and-warm      # twice, into an empty compile cache then from it

Prints the wall time of the run and, per framework, the entries, how many were checked (the rest
share the verdicts of the same function), the (shape, dtype) cases they were checked on, the
seconds spent checking them (summed over the worker processes) and their share. The target
is 60 s wall on 2 cores with the ci profile.
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
import subprocess
import sys
import tempfile
import time


def run_report(extra: list[str]) -> tuple[dict, float]:
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "initcheck.cli", "report", "--out", folder, *extra], check=False)
        wall = time.perf_counter() - started
        return json.loads((pathlib.Path(folder) / "conformance.json").read_text()), wall


def machine() -> str:
    """The machine, in words: CPU model and the cores this process may use."""
    import os

    from initcheck import _xla

    cpu = json.loads(_xla.cpu_identity()).get("model name", "unknown CPU")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores"


def verdicts(document: dict) -> list:
    return [
        (t["id"], v["property"], v["case"].get("shape"), v["case"]["dtype"], v["status"], v["statistic"], v["pvalue"])
        for t in document["targets"]
        for v in t["verdicts"]
    ]


def fresh_and_warm(extra: list[str]) -> None:
    """The catalog into an empty compile cache (a fresh machine), then again from that cache."""
    with tempfile.TemporaryDirectory() as cache:
        fresh, fresh_wall = run_report(["--compile-cache", cache, *extra])
        warm, warm_wall = run_report(["--compile-cache", cache, *extra])
    print(f"machine: {machine()}")
    print(f"fresh (empty compile cache): {fresh_wall:.1f} s wall, {fresh['seconds']:.1f} s of checks")
    print(f"warm (the same cache again): {warm_wall:.1f} s wall, {warm['seconds']:.1f} s of checks")
    same = verdicts(fresh) == verdicts(warm)
    print(f"every verdict, statistic and p-value the same in both runs: {same}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from", dest="source", default=None, help="a conformance.json to read instead of running")
    parser.add_argument("--fresh-and-warm", action="store_true", help="run twice: empty compile cache, then warm")
    args, extra = parser.parse_known_args()
    if args.fresh_and_warm:
        fresh_and_warm(extra)
        return
    if args.source:
        document, wall = json.loads(pathlib.Path(args.source).read_text()), None
    else:
        document, wall = run_report(extra)
    env = document["environment"]
    print(
        f"initcheck report, profile {document['profile']['name']}, {len(document['targets'])} entries, "
        f"device {env['device']}"
    )
    if wall is not None:
        print(f"wall time of the command: {wall:.1f} s (interpreter start and imports included); {machine()}")
    print(f"wall time of the checks (as the report states): {document['seconds']:.1f} s")
    rows = collections.defaultdict(collections.Counter)
    for target in document["targets"]:
        row = rows[target.get("framework") or "?"]
        row["entries"] += 1
        if not target.get("verdicts_of"):  # a target sharing another's verdicts was not checked itself
            row["checked"] += 1
            row["cases"] += len({(tuple(v["case"]["shape"]), v["case"]["dtype"]) for v in target["verdicts"]})
        row["seconds"] += target["seconds"]
    rows["all"] = sum(rows.values(), collections.Counter())
    total = rows["all"]["seconds"] or 1.0
    print(f"\n{'framework':<10} {'entries':>7} {'checked':>7} {'cases':>6} {'check s':>9} {'share':>6}")
    for framework, row in rows.items():
        share = "" if framework == "all" else f"{100 * row['seconds'] / total:>5.1f}%"
        print(
            f"{framework:<10} {row['entries']:>7} {row['checked']:>7} {row['cases']:>6} {row['seconds']:>9.1f} {share:>6}"
        )


if __name__ == "__main__":
    main()
