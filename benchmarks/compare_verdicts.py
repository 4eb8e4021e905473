"""Verdict for verdict, statistic for statistic: the catalog report and the corpus audits before and
after a refactor.

    python benchmarks/compare_verdicts.py record before.json     # on the old commit
    python benchmarks/compare_verdicts.py record after.json      # on the new one
    python benchmarks/compare_verdicts.py compare before.json after.json

``record`` runs ``initcheck report`` on the whole catalog (ci profile, seed 0, one process per core)
and ``initcheck.audit`` on every model of ``tests/corpus``, and keeps each verdict's target,
property, case, status, statistic, p-value, n and known defect (times and environment left out).
``compare`` prints every difference and exits 1 when there is one. Messages are compared too, but
reported apart: a refactor may reword a message without changing a verdict.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEPT = ("property", "status", "statistic", "pvalue", "n", "known_defect")


def _case(case: dict) -> str:
    return json.dumps(case, sort_keys=True)


def _rows(target: str, verdicts: list[dict]) -> dict[str, dict]:
    rows = {}
    for v in verdicts:
        key = f"{target} | {v['property']} | {_case(v['case'])}"
        while key in rows:  # the same case twice (kept apart by its order)
            key += " +"
        rows[key] = {**{k: v.get(k) for k in KEPT}, "message": v.get("message", "")}
    return rows


def _catalog() -> dict[str, dict]:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [sys.executable, "-m", "initcheck.cli", "report", "--out", out, "--no-compile-cache"],
            check=False,
            cwd=ROOT,
        )
        document = json.loads((Path(out) / "conformance.json").read_text())
    rows = {}
    for target in document["targets"]:
        rows.update(_rows(f"catalog {target['id']} [{target['result']}]", target["verdicts"]))
    return rows


def _corpus() -> dict[str, dict]:
    os.environ.setdefault("KERAS_BACKEND", "jax")
    sys.path.insert(0, str(ROOT))
    import initcheck
    from tests.corpus import equinox_models, haiku_models, keras_models, linen_models, nnx_models

    rows = {}
    for module in (linen_models, nnx_models, haiku_models, equinox_models, keras_models):
        for entry in module.ENTRIES:
            model, inputs, options = entry.build()
            report = initcheck.audit(model, *inputs, **options)
            target = f"corpus {entry} [{report.result}]"
            rows.update(_rows(target, [v.to_dict() for v in report.verdicts]))
            print(f"audited {entry}: {report.result}", file=sys.stderr)
    return rows


def record(path: str) -> None:
    rows = {**_corpus(), **_catalog()}
    Path(path).write_text(json.dumps(rows, indent=0, sort_keys=True))
    print(f"{len(rows)} verdicts written to {path}")


def compare(before_path: str, after_path: str) -> int:
    before, after = json.loads(Path(before_path).read_text()), json.loads(Path(after_path).read_text())
    differ = reworded = 0
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old is None or new is None:
            differ += 1
            print(f"{'only after' if old is None else 'only before'}: {key}")
            continue
        changed = [k for k in KEPT if old[k] != new[k]]
        if changed:
            differ += 1
            print(f"differs: {key}: " + ", ".join(f"{k} {old[k]!r} -> {new[k]!r}" for k in changed))
        elif old["message"] != new["message"]:
            reworded += 1
            print(f"reworded: {key}:\n    {old['message']}\n    {new['message']}")
    print(f"{len(before)} verdicts before, {len(after)} after: {differ} differ, {reworded} reworded only")
    return 1 if differ else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "record":
        record(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
