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

# Bottom to top: a module may import its own layer or the ones below (see CONTRIBUTING.md). Each
# entry names one module exactly; "pkg.*" names every module of the package pkg (not pkg itself).
LAYERS = [
    # 0 foundations
    ["initcheck._dtypes", "initcheck._element", "initcheck._fans", "initcheck._frameworks", "initcheck._rounding",
     "initcheck._version", "initcheck._xla", "initcheck._stats", "initcheck._profiles", "initcheck._verdict",
     "initcheck.laws", "initcheck.derivation", "initcheck._frameworks.derive", "initcheck._property_registry"],
    # 1 what a model's init is recorded as, and the frameworks' law tables
    ["initcheck._record", "initcheck._record.*", "initcheck._frameworks._protocol", "initcheck._frameworks.jax_laws",
     "initcheck._frameworks.flax_laws", "initcheck._frameworks.haiku_laws", "initcheck._frameworks.keras_laws",
     "initcheck._frameworks.equinox_layers", "initcheck._frameworks._observed", "initcheck._frameworks._declared",
     "initcheck.adapters", "initcheck._defects", "initcheck._entries"],
    # 2 sampling, properties, strategies
    ["initcheck._sampler", "initcheck._properties", "initcheck._properties.*", "initcheck.strategies",
     "initcheck.strategies.*", "initcheck.inits", "initcheck.law_syntax"],
    # 3 the framework modules and their registry
    ["initcheck._frameworks.jax_nn", "initcheck._frameworks.own", "initcheck._frameworks.linen",
     "initcheck._frameworks.nnx", "initcheck._frameworks.haiku", "initcheck._frameworks.equinox",
     "initcheck._frameworks.keras", "initcheck._frameworks.registry"],
    # 4 checking and auditing
    ["initcheck._api", "initcheck._audit", "initcheck._audit.*"],
    # 5 the catalog
    ["initcheck._catalog"],
    # 6 reports
    ["initcheck._document", "initcheck._html", "initcheck._plots", "initcheck._output", "initcheck._runner"],
    # 7 the lock and the targets of the entry points
    ["initcheck.lock", "initcheck.lock.*", "initcheck._targets"],
    # 8 entry points
    ["initcheck.cli", "initcheck._cli_parser", "initcheck.plugin", "initcheck._plugin_settings", "initcheck._isolation",
     "initcheck._plugin_report", "initcheck"],
]  # fmt: skip
FRAMEWORK_PACKAGES = ("flax", "haiku", "equinox", "keras")  # imported only by their own framework modules
FRAMEWORK_FILES = {  # the package -> the files of its framework module (at most three, in one folder)
    "flax": {"initcheck/_frameworks/flax_laws.py", "initcheck/_frameworks/linen.py", "initcheck/_frameworks/nnx.py"},
    "haiku": {"initcheck/_frameworks/haiku_laws.py", "initcheck/_frameworks/haiku.py"},
    "equinox": {"initcheck/_frameworks/equinox_layers.py", "initcheck/_frameworks/equinox.py"},
    "keras": {"initcheck/_frameworks/keras_laws.py", "initcheck/_frameworks/keras.py"},
}


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


def _names(entry: str, module: str) -> bool:
    return module == entry or (entry.endswith(".*") and module.rpartition(".")[0] == entry[:-2])


def layer_of(module: str) -> int | None:
    """The layer that names ``module`` exactly (or names its package with ``pkg.*``), or None."""
    return next((i for i, layer in enumerate(LAYERS) for entry in layer if _names(entry, module)), None)


def unplaced(graph: dict[str, set[str]]) -> list[str]:
    return sorted(m for m in graph if layer_of(m) is None)


def private_imports(graph: dict[str, set[str]]) -> list[str]:
    """Imports of another package's private module: ``a.b._c`` may be imported only from inside
    ``a.b`` (the top package's own private modules, ``initcheck._x``, are its whole package's)."""
    out = []
    for importer, targets in graph.items():
        for target in sorted(targets):
            parts = target.split(".")
            for depth in range(2, len(parts)):
                package = ".".join(parts[:depth])
                if parts[depth].startswith("_") and not (importer + ".").startswith(package + "."):
                    out.append(f"{importer} imports {target}, private to {package}")
                    break
    return out


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
    def above(b: str, a: str) -> bool:
        return (layer_of(b) or 0) > (layer_of(a) or 0)

    return [f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
            for a, targets in graph.items() for b in sorted(targets) if above(b, a)]  # fmt: skip


def test_the_package_has_no_import_cycle():
    assert find_cycle(import_graph()) is None


def test_imports_run_one_way_down_the_layers():
    assert not upward_imports(import_graph())


def test_every_module_is_in_exactly_one_layer():
    graph = import_graph()
    assert not unplaced(graph), "add them to LAYERS and to CONTRIBUTING.md"
    named = [entry for layer in LAYERS for entry in layer]
    twice = [m for m in graph if sum(_names(entry, m) for entry in named) > 1]
    assert not twice, "named by two entries of LAYERS"
    assert all(entry.endswith(".*") or entry in graph for entry in named), [e for e in named if e not in graph]


def test_no_module_imports_another_packages_private_module():
    assert not private_imports(import_graph())


def framework_importers(sources: dict[str, str]) -> dict[str, set[str]]:
    """Framework package -> the files (of ``sources``: path -> text) that import it, anywhere in them."""
    importers: dict[str, set[str]] = {package: set() for package in FRAMEWORK_PACKAGES}
    for path, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            for name in names:
                if name.split(".")[0] in importers:
                    importers[name.split(".")[0]].add(path)
    return importers


def _sources() -> dict[str, str]:
    return {
        str(p.relative_to(ROOT)): p.read_text()
        for folder in ("initcheck", "strategies")
        for p in (ROOT / folder).rglob("*.py")
    }


def test_flax_haiku_equinox_and_keras_are_imported_by_their_own_framework_modules_only():
    importers = framework_importers(_sources())
    assert importers == FRAMEWORK_FILES
    assert all(len(files) <= 3 and len({f.rpartition("/")[0] for f in files}) == 1 for files in importers.values())


def framework_dispatches(sources: dict[str, str]) -> list[str]:
    """``framework == "haiku"``-style branches: a comparison of a name that says framework with a string."""

    def says_framework(node) -> bool:  # framework, self.framework, framework.name, frameworks[0].family
        names = [
            n.id if isinstance(n, ast.Name) else n.attr
            for n in ast.walk(node)
            if isinstance(n, ast.Name | ast.Attribute)
        ]
        return any("framework" in name for name in names)

    def strings(node) -> bool:  # "haiku", or ("flax", "haiku")
        items = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else [node]
        return any(isinstance(i, ast.Constant) and isinstance(i.value, str) for i in items)

    found = []
    for path, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                if any(strings(s) for s in sides) and any(says_framework(s) for s in sides if not strings(s)):
                    found.append(f"{path}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_framework_name_dispatch_in_the_package():
    assert not framework_dispatches(_sources())
    planted = {
        "initcheck/_audit/x.py": 'def f(framework):\n    return 1 if framework == "haiku" else 2\n',
        "initcheck/_audit/y.py": 'def f(framework):\n    return framework.name != "keras"\n',
        "initcheck/_audit/z.py": 'def f(self):\n    return self.framework.family in ("flax", "haiku")\n',
        "initcheck/_audit/ok.py": 'def f(law):\n    return law.fans == "haiku"\n',  # a law's fan rule, not a framework
    }
    assert framework_dispatches(planted) == [
        "initcheck/_audit/x.py:2: framework == 'haiku'",
        "initcheck/_audit/y.py:2: framework.name != 'keras'",
        "initcheck/_audit/z.py:2: self.framework.family in ('flax', 'haiku')",
    ]


def test_the_framework_import_check_sees_a_stray_import():
    sources = {**_sources(), "initcheck/_catalog.py": "def f():\n    from haiku import initializers\n"}
    assert framework_importers(sources)["haiku"] == FRAMEWORK_FILES["haiku"] | {"initcheck/_catalog.py"}


def test_the_checks_see_a_cycle_an_upward_import_an_unplaced_module_and_a_private_import():
    graph = import_graph()
    graph["initcheck.laws"] = graph["initcheck.laws"] | {"initcheck._catalog"}  # the laws reaching up
    assert upward_imports(graph) == ["initcheck.laws (layer 0) imports initcheck._catalog (layer 5)"]
    assert find_cycle(graph)[0] == find_cycle(graph)[-1] and "initcheck._catalog" in find_cycle(graph)
    planted = {**import_graph(), "initcheck.nonexistent_module": set()}  # a module no layer names
    assert unplaced(planted) == ["initcheck.nonexistent_module"]
    assert layer_of("initcheck.nonexistent_module") is None and layer_of("initcheck._audit._nowhere.deep") is None
    planted["initcheck.lock._values"] = planted["initcheck.lock._values"] | {"initcheck._frameworks.nnx"}
    assert not private_imports(planted)  # a public module of a private package: its seam
    planted["initcheck.lock._values"] |= {"initcheck._audit._key_use", "initcheck._record._model"}
    assert private_imports(planted) == [
        "initcheck.lock._values imports initcheck._audit._key_use, private to initcheck._audit",
        "initcheck.lock._values imports initcheck._record._model, private to initcheck._record",
    ]


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
