"""One declared initializer under ``pytest --initcheck``: the session's wall time and its items'
time, with an empty compile cache and then with the same cache warm (issue 32's target: <= 2 s
after its first compile).

    python benchmarks/plugin_one.py [--profile ci] [--repeat 2]

The project declares ``gpt_normal = initcheck.expects(laws.Normal(0.02))(normal(0.02))`` and
nothing else. "items" is the sum of the initializer's items' durations from pytest's JUnit XML
(its checks, without the interpreter's start, imports and collection); "session" is the
subprocess's wall time.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree

INITS = """
import jax
import initcheck
from initcheck import laws

gpt_normal = initcheck.expects(laws.Normal(0.02))(jax.nn.initializers.normal(0.02))
"""


def project(folder: pathlib.Path, profile: str) -> pathlib.Path:
    root = folder / "one"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "inits.py").write_text(INITS)
    (root / "pyproject.toml").write_text(
        f'[tool.pytest.ini_options]\npythonpath = ["."]\n\n[tool.initcheck]\nmodules = ["pkg.inits"]\n'
        f'profile = "{profile}"\n'
    )
    return root


def run(root: pathlib.Path, cache: str) -> tuple[float, float, int]:
    """(session wall, the initializer's items' summed duration, how many items) of one session."""
    junit = root / "junit.xml"
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--initcheck",
            f"--initcheck-compile-cache={cache}",
            f"--junitxml={junit}",
        ],
        cwd=root,
        check=False,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"pytest --initcheck failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    cases = [c for c in ElementTree.parse(junit).getroot().iter("testcase") if "gpt_normal" in c.get("name", "")]
    return wall, sum(float(c.get("time", 0)) for c in cases), len(cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--repeat", type=int, default=2, help="warm runs after the cold one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory() as cache:
        root = project(pathlib.Path(folder), args.profile)
        for i in range(1 + args.repeat):
            wall, items, count = run(root, cache)
            state = "cold (empty compile cache)" if i == 0 else "warm (the same cache)"
            print(f"{state:28s} session {wall:6.1f} s   {count} items {items:6.1f} s", flush=True)


if __name__ == "__main__":
    main()
