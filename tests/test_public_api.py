"""The public modules' names: a literal `__all__` (read from the source, not computed), exactly the
names listed here, each defined and documented; and their docstrings are Markdown, not RST."""

import ast
import importlib
import inspect
import pathlib
import re
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

PUBLIC = {
    "initcheck.laws": [
        "Constant",
        "DeltaOrthogonal",
        "Deterministic",
        "Dirac",
        "Distribution",
        "Identity",
        "Law",
        "Mixture",
        "Normal",
        "Orthogonal",
        "Sparse",
        "TruncatedNormal",
        "Uniform",
        "VarianceScaling",
        "as_law",
        "matrix_view",
    ],
    "initcheck.inits": [
        "calculate_gain",
        "dirac",
        "eye",
        "kaiming_normal",
        "kaiming_uniform",
        "keras_default",
        "keras_embedding",
        "mxnet_default",
        "normal",
        "scaled_normal",
        "sparse",
        "threshold_uniform",
        "torch_default_bias",
        "torch_default_weight",
        "trunc_normal",
        "uniform",
        "variance_scaling",
        "xavier_normal",
        "xavier_uniform",
    ],
    "initcheck.law_syntax": ["LawSyntaxError", "literal_call", "parse_law", "resolve"],
    "initcheck": [
        "Case",
        "CatalogEntry",
        "Conformance",
        "ConformanceError",
        "Model",
        "Profile",
        "Verdict",
        "assert_conforms",
        "audit",
        "catalog",
        "check",
        "expects",
        "laws",
    ],
    "initcheck.adapters": [
        "KEY_NAMES",
        "Initializer",
        "canonical",
        "describe",
        "from_haiku",
        "from_keras",
        "is_haiku_initializer",
        "is_haiku_style",
        "is_keras_initializer",
        "signature_problem",
        "takes_haiku_form",
    ],
    "initcheck.derivation": ["collisions", "haiku_keys", "key_bytes", "linen_key", "nnx_key"],
    "initcheck.cli": ["main"],
    "initcheck.lock": [
        "BACKEND",
        "CHANGED",
        "DEFAULT_PATH",
        "MATCHED",
        "NEW",
        "REMOVED",
        "SETTINGS",
        "STATUSES",
        "UNREPRODUCIBLE",
        "UPDATED",
        "Lock",
        "LockError",
        "Outcome",
        "Section",
        "Setting",
        "applied",
        "backend",
        "check_target",
        "current",
        "environment",
        "find_cause",
        "initializer_digests",
        "merged",
        "model_digests",
        "removed",
        "section",
        "target_digests",
    ],
    "initcheck.plugin": [
        "MARKER",
        "ConformanceFailure",
        "InitcheckCollector",
        "InitcheckItem",
        "InitcheckSession",
        "initcheck",
        "pytest_addoption",
        "pytest_configure",
    ],
    "initcheck.strategies": [
        "SIDES",
        "axis_layouts",
        "catalog_initializers",
        "complex_dtypes",
        "conv_shapes",
        "edge_shapes",
        "equinox_initializers",
        "fan_modes",
        "flax_initializers",
        "float_dtypes",
        "haiku_initializers",
        "initcheck_initializers",
        "jax_initializers",
        "keras_initializers",
        "keys",
        "shapes_for",
        "weight_shapes",
    ],
}


def _source(module_name: str) -> tuple[pathlib.Path, ast.Module]:
    path = pathlib.Path(inspect.getsourcefile(importlib.import_module(module_name)) or "")
    return path, ast.parse(path.read_text(encoding="utf-8"))


def _literal_all(tree: ast.Module) -> list[str]:
    """The module-level `__all__`, which must be assigned once, to a list or tuple of strings."""
    assigned = [
        node
        for node in tree.body
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets))
        or (isinstance(node, (ast.AnnAssign, ast.AugAssign)) and getattr(node.target, "id", None) == "__all__")
    ]
    assert len(assigned) == 1, f"__all__ is assigned {len(assigned)} times at module level; assign it once"
    node = assigned[0]
    assert not isinstance(node, ast.AugAssign), "__all__ is extended with +=; write it out"
    value = node.value
    assert isinstance(value, (ast.List, ast.Tuple)), f"__all__ = {ast.unparse(value)} is not a literal list"
    assert all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in value.elts), (
        f"__all__ = {ast.unparse(value)} holds something other than string literals"
    )
    return [e.value for e in value.elts]


def _attribute_docstring(module_name: str, name: str) -> str | None:
    """The docstring written under `name = ...` in `module_name`, or in the module it imports `name` from."""
    _, tree = _source(module_name)
    body = tree.body
    for i, node in enumerate(body):
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            after = body[i + 1] if i + 1 < len(body) else None
            if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
                return after.value.value if isinstance(after.value.value, str) else None
            return None
        if isinstance(node, ast.ImportFrom) and node.level == 0 and any(a.name == name for a in node.names):
            return _attribute_docstring(node.module or "", name)
    return None


def _docstring(module_name: str, name: str, obj) -> str | None:
    if inspect.isclass(obj):
        return obj.__dict__.get("__doc__")  # its own, not a base class's
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, types.ModuleType)):
        return obj.__doc__
    if callable(obj) and getattr(obj, "__doc__", None) and type(obj).__doc__ != obj.__doc__:
        return obj.__doc__  # a wrapped function (a pytest fixture) keeps its own
    return _attribute_docstring(module_name, name)


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_all_is_literal_and_expected(module_name):
    _, tree = _source(module_name)
    assert _literal_all(tree) == PUBLIC[module_name]


@pytest.mark.parametrize("module_name, name", [(m, n) for m in sorted(PUBLIC) for n in PUBLIC[m]])
def test_public_name_exists_and_is_documented(module_name, name):
    module = importlib.import_module(module_name)
    assert hasattr(module, name), f"{module_name}.__all__ names {name}, which {module_name} does not define"
    doc = _docstring(module_name, name, getattr(module, name))
    assert doc and doc.strip(), f"{module_name}.{name} has no docstring"


# The files whose docstrings the API reference renders and that are written in Markdown (Google
# style); for the audit package and the catalog, only the public objects' own docstrings.
MARKDOWN_FILES = [
    "initcheck/__init__.py",
    "initcheck/_api.py",
    "initcheck/_profiles.py",
    "initcheck/_verdict.py",
    "initcheck/inits.py",
    "initcheck/law_syntax.py",
    "initcheck/laws.py",
    "strategies/__init__.py",
    "strategies/_core.py",
]
MARKDOWN_OBJECTS = [
    ("initcheck/_audit/__init__.py", "audit"),
    ("initcheck/_record/_model.py", "Model"),
    ("initcheck/_catalog.py", "catalog"),
]
RST = re.compile(r"``|:(?:func|class|meth|data|attr|mod|exc):`")


def _docstrings(path: str, only: str | None = None):
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    nodes = [tree, *ast.walk(tree)] if only is None else []
    if only is not None:
        nodes = [n for n in ast.walk(tree) if getattr(n, "name", None) == only]
        nodes += [m for n in list(nodes) for m in ast.walk(n)]
    for node in dict.fromkeys(nodes):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield getattr(node, "name", path), doc


@pytest.mark.parametrize("path, only", [(p, None) for p in MARKDOWN_FILES] + MARKDOWN_OBJECTS)
def test_docstrings_are_markdown_not_rst(path, only):
    found = []
    for name, doc in _docstrings(path, only):
        prose = re.sub(r"```.*?```", "", doc, flags=re.DOTALL)  # code blocks may hold anything
        found += [f"{name}: ...{prose[max(0, m.start() - 30) : m.end() + 20]!r}..." for m in RST.finditer(prose)]
    assert not found, f"RST markup in {path} (write `x` for code, [x][initcheck.x] for a link): {found}"
