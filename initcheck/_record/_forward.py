"""A model's forward pass as a function of the values its init made: ``fn(values, inputs)``.

Each framework module builds its own (linen's ``apply``, Haiku's ``apply``, nnx's ``merge``, an
Equinox pytree with the values in place, Keras's ``stateless_call``) from the helpers here. Every
floating value is an input of ``fn`` (in the order of ``keys``, one ``(collection, path)`` each);
random state and integers stay fixed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from initcheck import _dtypes
from initcheck._record._parameter import Parameter, is_key


class NoForward(Exception):
    """The forward pass cannot be traced; the message says why and what to pass."""


@dataclasses.dataclass
class Forward:
    """The forward pass ``fn(values, inputs)`` with the values the init made and the inputs."""

    fn: Callable  # (values, inputs) -> outputs
    keys: list  # (collection, path) of each value, in order
    values: list  # the values the init made
    inputs: tuple  # the forward pass's inputs
    mesh: Any = None  # the mesh the values were made in (sharded models), or None

    def context(self):
        """The context the forward pass runs in: the values' mesh, when they were made in one."""
        return jax.set_mesh(self.mesh) if self.mesh is not None else contextlib.nullcontext()

    @property
    def traced_inputs(self) -> list:
        """The inputs' array leaves, in order: the jaxpr's inputs after the values. Python values
        (``True`` for ``train``, an int, a string) stay fixed, as ``jit``'s static arguments would."""
        return [x for x in jax.tree_util.tree_leaves(self.inputs) if _is_array(x)]

    def jaxpr(self):
        """The forward pass's ``ClosedJaxpr``; its first ``len(keys)`` inputs are the values, then
        ``traced_inputs``. A collective over a named axis that nothing binds (``nn.BatchNorm(axis_name=
        "batch")`` in training mode, written for ``pmap``) is run over that axis, of size one, by
        ``jax.vmap(..., axis_name=)``."""
        fn = self._with_static_inputs()
        with self.context():
            return unbound_axes(lambda names: jax.make_jaxpr(_bound_all(fn, names))(self.values, self.traced_inputs))[1]

    def _with_static_inputs(self) -> Callable:
        """``fn(values, arrays)``: the forward pass with the inputs' Python values in place."""
        leaves, treedef = jax.tree_util.tree_flatten(self.inputs)
        where = [i for i, x in enumerate(leaves) if _is_array(x)]

        def fn(values, arrays):
            now = list(leaves)
            for i, x in zip(where, arrays):
                now[i] = x
            return self.fn(values, jax.tree_util.tree_unflatten(treedef, now))

        return fn


MAX_BOUND_AXES = 4  # named axes initcheck binds for a forward pass or an init
_UNBOUND = re.compile(r"unbound axis name: (\w+)")


def unbound_axes(run: Callable[[list[str]], Any]) -> tuple[list[str], Any]:
    """``(names, run(names))``: the named axes that ``run`` must bind (a collective over an axis
    that nothing binds, written for ``pmap``: ``nn.BatchNorm(axis_name="batch")`` in training mode,
    ``hk.BatchNorm(cross_replica_axis="i")``), found one ``NameError`` at a time."""
    names: list[str] = []
    while True:
        try:
            return names, run(list(names))
        except NameError as exc:
            found = _UNBOUND.search(str(exc))
            if found is None or found.group(1) in names or len(names) >= MAX_BOUND_AXES:
                raise
            names.append(found.group(1))


def _is_array(x) -> bool:
    return isinstance(x, jax.Array | np.ndarray | np.generic | jax.ShapeDtypeStruct)


def _bound_all(fn: Callable, names: list[str]) -> Callable:
    for name in names:
        fn = _bound(fn, name)
    return fn


def _bound(fn: Callable, name: str) -> Callable:
    """``fn(values, arrays)`` run under ``jax.vmap`` over an axis ``name`` of size one (``arrays``
    given a leading axis of size one, which the vmap maps away: ``fn`` sees them whole; its outputs
    taken at index 0): a collective over ``name`` is then the identity."""

    def bound(values, arrays):
        out = jax.vmap(fn, in_axes=(None, 0), axis_name=name, axis_size=1)(values, [x[None] for x in arrays])
        return jax.tree_util.tree_map(lambda y: y[0], out)

    return bound


def with_bound_axes(fn: Callable, names: list[str]) -> Callable:
    """``fn(*args, **kwargs)`` with the axes ``names`` bound as ``_bound`` binds them (the inputs'
    arrays batched, their Python values fixed): an init that runs a collective over an axis of
    ``pmap`` (``hk.BatchNorm(cross_replica_axis="i")`` in training mode) runs outside it."""
    if not names:
        return fn

    def run(*args, **kwargs):
        leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
        where = [i for i, x in enumerate(leaves) if _is_array(x)]

        def inner(_, arrays):
            now = list(leaves)
            for i, x in zip(where, arrays):
                now[i] = x
            a, k = jax.tree_util.tree_unflatten(treedef, now)
            return fn(*a, **k)

        return _bound_all(inner, names)(None, [leaves[i] for i in where])

    return run


def apply_inputs(target) -> tuple[tuple, dict]:
    """``(args, kwargs)`` of a forward pass that is the model's ``apply`` (linen, Haiku): ``call_args``
    and ``call_kwargs`` when given, else the init's inputs with ``call_kwargs`` added."""
    if target.call_args is not None:
        return target.call_args, dict(target.call_kwargs)
    return target.args, {**target.kwargs, **target.call_kwargs}


def mesh_of(leaves) -> Any:
    """The mesh of the first value laid out with a ``NamedSharding``, or None."""
    for x in jax.tree_util.tree_leaves(leaves):
        sharding = getattr(x, "sharding", None)
        if isinstance(sharding, jax.sharding.NamedSharding):
            return sharding.mesh
    return None


def tracked(p: Parameter) -> bool:
    return not p.is_key and _dtypes.is_inexact(p.dtype)


def nested(parameters: list[Parameter], split: Callable[[str], list[str]]) -> dict:
    tree: dict = {}
    for p in parameters:
        node = tree.setdefault(p.collection, {})
        *parents, leaf = split(p.path)
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = p.value
    return tree


def replaced(tree: dict, keys: list, values: list, split: Callable[[str], list[str]]) -> dict:
    def copy(node):
        return {k: copy(v) for k, v in node.items()} if isinstance(node, dict) else node

    out = copy(tree)
    for (collection, path), value in zip(keys, values):
        node = out[collection]
        *parents, leaf = split(path)
        for name in parents:
            node = node[name]
        node[leaf] = value
    return out


def key_of(seed):
    return jax.random.key(seed) if isinstance(seed, int) else seed


class Leaves:
    """A pytree's leaves, those that are tracked values (found by ``path_of(leaf path)`` in
    ``by_path``) swappable for traced ones: ``with_values(values)`` is the tree with them in place."""

    def __init__(self, tree, by_path: Mapping[str, Parameter], path_of: Callable[[Any], str]):
        flat, self.treedef = jax.tree_util.tree_flatten_with_path(tree)
        self.fixed = [leaf for _, leaf in flat]
        self.positions, self.keys = [], []
        for i, (path, leaf) in enumerate(flat):
            p = by_path.get(path_of(path))
            if p is not None and tracked(p) and not is_key(leaf):
                self.positions.append(i)
                self.keys.append((p.collection, p.path))
        self.values = [self.fixed[i] for i in self.positions]

    def with_values(self, values):
        now = list(self.fixed)
        for i, value in zip(self.positions, values):
            now[i] = value
        return jax.tree_util.tree_unflatten(self.treedef, now)


def values_of(parameters: list[Parameter], keys: list) -> list[Any]:
    by_key = {(p.collection, p.path): p.value for p in parameters}
    return [by_key[k] for k in keys]


def path_text(path) -> str:
    """``layers/0/weight`` (``model.layers[0].weight``) from a pytree path of attribute, index and
    dict entries: segments joined by ``/`` as for the other frameworks, so that ``expect=``
    patterns such as ``"**/bias"`` read the same."""
    names = []
    for entry in path:
        for field in ("name", "idx", "key"):
            if hasattr(entry, field):
                names.append(str(getattr(entry, field)))
                break
        else:
            names.append(str(entry))
    return "/".join(names) or "<root>"


def tree_values(prefix: str, tree) -> dict[str, Any]:
    """Every array leaf of ``tree`` by its path (``path_text``), after ``prefix``."""
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {f"{prefix}{path_text(p)}": leaf for p, leaf in leaves if hasattr(leaf, "dtype")}
