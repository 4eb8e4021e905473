"""The house rules, enforced with the tests: one-way layers without import cycles, lint, format,
types, the documentation build, and the README's two set-up commands (the second is `.ci/run`'s).
These are deterministic checks of the repository itself (no sampling, no false alarms)."""

from __future__ import annotations

import ast
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Bottom to top: a module may import its own layer or the ones below (see CONTRIBUTING.md).
LAYERS = [
    ["initcheck._dtypes", "initcheck._element", "initcheck._fans", "initcheck._frameworks", "initcheck._rounding",
     "initcheck._version", "initcheck._xla", "initcheck._stats", "initcheck._profiles", "initcheck._verdict",
     "initcheck.laws", "initcheck.derivation", "initcheck.adapters"],
    ["initcheck._sampler", "initcheck._properties", "initcheck.strategies", "initcheck.inits", "initcheck.law_syntax",
     "initcheck._defects", "initcheck._entries", "initcheck._keras", "initcheck._equinox",
     "initcheck._catalog_ecosystem"],
    ["initcheck._api", "initcheck.audit"],
    ["initcheck._catalog"],
    ["initcheck._document", "initcheck._html", "initcheck._plots", "initcheck._output", "initcheck._runner"],
    ["initcheck.cli", "initcheck._cli_parser", "initcheck.plugin", "initcheck._plugin_settings",
     "initcheck._plugin_report", "initcheck"],
]  # fmt: skip


def _module_name(path: pathlib.Path) -> str:
    relative = path.relative_to(ROOT).with_suffix("")
    parts = list(relative.parts)
    if parts[0] == "strategies":  # installed as initcheck.strategies
        parts = ["initcheck", *parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports (anywhere in it, functions included)."""
    files = {_module_name(p): p for folder in ("initcheck", "strategies") for p in (ROOT / folder).rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
                submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in files]
                targets = submodules if len(submodules) == len(node.names) else [base, *submodules]
            else:
                continue
            graph[name].update(t for t in targets if t in files and t != name)
    return graph


def layer_of(module: str) -> int:
    matches = [(len(prefix), i) for i, layer in enumerate(LAYERS) for prefix in layer
               if module == prefix or module.startswith(prefix + ".")]  # fmt: skip
    assert matches, f"{module} is in no layer: add it to LAYERS and CONTRIBUTING.md"
    return max(matches)[1]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as the modules along it, or None."""
    state: dict[str, str] = {}

    def visit(module, trail):
        if state.get(module) == "open":
            return [*trail[trail.index(module) :], module]
        if state.get(module) == "done":
            return None
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            if cycle := visit(imported, [*trail, module]):
                return cycle
        state[module] = "done"
        return None

    return next((c for m in sorted(graph) if (c := visit(m, [])) is not None), None)


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
            for a, targets in graph.items() for b in sorted(targets) if layer_of(b) > layer_of(a)]  # fmt: skip


def test_the_package_has_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_imports_run_one_way_down_the_layers():
    assert not upward_imports(import_graph())


def test_the_checks_see_a_cycle_and_an_upward_import():
    graph = import_graph()
    graph["initcheck.laws"] = graph["initcheck.laws"] | {"initcheck._catalog"}  # the laws reaching up
    assert upward_imports(graph) == ["initcheck.laws (layer 0) imports initcheck._catalog (layer 3)"]
    assert find_cycle(graph)[0] == find_cycle(graph)[-1] and "initcheck._catalog" in find_cycle(graph)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "command",
    [
        ("ruff", "check", "."),
        ("ruff", "format", "--check", "."),
        ("mypy",),
        ("mkdocs", "build", "--strict", "-q", "-d"),
    ],
    ids=["ruff-check", "ruff-format", "mypy", "mkdocs"],
)
def test_lint_format_types_and_docs_are_clean(command, tmp_path):
    args = (*command, str(tmp_path / "site")) if command[0] == "mkdocs" else command
    done = _run(*args)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]


def test_the_readme_has_two_set_up_commands_and_ci_runs_the_second():
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```\n(.+?)\n```", setup, flags=re.S)
    assert len(commands) == 2 and commands[0].endswith("initcheck report --out reports/"), commands
    assert commands[1] in (ROOT / ".ci" / "run").read_text()
    assert len(readme.splitlines()) <= 200
    shots = re.findall(r"!\[[^\]]*\]\((docs/[^)]+\.png)\)", readme)
    assert shots and all((ROOT / shot).stat().st_size > 10_000 for shot in shots), shots  # the report's screenshot


def test_the_version_is_written_once():
    version = re.search(r'__version__ = "(.+)"', (ROOT / "initcheck" / "_version.py").read_text()).group(1)
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and f'"{version}"' not in pyproject
    others = [
        p for p in (ROOT / "initcheck").rglob("*.py") if p.name != "_version.py" and f'"{version}"' in p.read_text()
    ]
    assert not others, others
