"""A model's forward pass as a function of the values its init made: ``fn(values, inputs)``.

Linen: ``module.apply(variables, *inputs, rngs=..., mutable=True)`` (batch statistics update as in
training); Haiku: ``transformed.apply(params[, state], rng, *inputs)``; nnx: the built module,
``nnx.merge``d with the values, called on ``call_args``; Equinox: the model pytree with the values
in place, called on ``call_args``; Keras: ``model.stateless_call(trainable, non_trainable, *inputs)``. Every floating value is an input of ``fn``
(in the order of ``keys``, one ``(collection, path)`` each); random state and integers stay fixed.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax

from initcheck import _dtypes
from initcheck.audit._model import Model
from initcheck.audit._parameter import Parameter, is_key


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

    def jaxpr(self):
        """The forward pass's ``ClosedJaxpr``; its first ``len(keys)`` inputs are the values."""
        with self.context():
            return jax.make_jaxpr(self.fn)(self.values, self.inputs)


def mesh_of(leaves) -> Any:
    """The mesh of the first value laid out with a ``NamedSharding``, or None."""
    for x in jax.tree_util.tree_leaves(leaves):
        sharding = getattr(x, "sharding", None)
        if isinstance(sharding, jax.sharding.NamedSharding):
            return sharding.mesh
    return None


def _tracked(p: Parameter) -> bool:
    return not p.is_key and _dtypes.is_inexact(p.dtype)


def _nested(parameters: list[Parameter], split: Callable[[str], list[str]]) -> dict:
    tree: dict = {}
    for p in parameters:
        node = tree.setdefault(p.collection, {})
        *parents, leaf = split(p.path)
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = p.value
    return tree


def _replaced(tree: dict, keys: list, values: list, split: Callable[[str], list[str]]) -> dict:
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


def _key(seed):
    return jax.random.key(seed) if isinstance(seed, int) else seed


def of_linen(target: Model, parameters: list[Parameter], call_args: tuple, call_kwargs: Mapping) -> Forward:
    split = lambda path: path.split("/")
    tree = _nested(parameters, split)
    keys = [(p.collection, p.path) for p in parameters if _tracked(p)]
    rng = target.rng
    rngs = {s: _key(k) for s, k in rng.items()} if isinstance(rng, Mapping) else {"params": _key(rng)}

    def fn(values, inputs):
        variables = _replaced(tree, keys, values, split)
        return target.model.apply(variables, *inputs, rngs=rngs, mutable=True, **call_kwargs)[0]

    values = _values(parameters, keys)
    return Forward(fn, keys, values, call_args, mesh_of(values))


def of_haiku(target: Model, parameters: list[Parameter], call_args: tuple, call_kwargs: Mapping) -> Forward:
    import haiku as hk  # lazy: Haiku loads only when a Haiku target is used

    split = lambda path: path.rsplit("/", 1)
    tree = _nested(parameters, split)
    keys = [(p.collection, p.path) for p in parameters if _tracked(p)]
    with_state = isinstance(target.model, hk.TransformedWithState)

    def fn(values, inputs):
        t = _replaced(tree, keys, values, split)
        params, state = t.get("params", {}), t.get("state", {})
        if with_state:
            return target.model.apply(params, state, target.rng, *inputs, **call_kwargs)[0]
        return target.model.apply(params, target.rng, *inputs, **call_kwargs)

    values = _values(parameters, keys)
    return Forward(fn, keys, values, call_args, mesh_of(values))


class _Leaves:
    """A pytree's leaves, those that are tracked values (found by ``path_of(leaf path)`` in
    ``by_path``) swappable for traced ones: ``with_values(values)`` is the tree with them in place."""

    def __init__(self, tree, by_path: Mapping[str, Parameter], path_of: Callable[[Any], str]):
        flat, self.treedef = jax.tree_util.tree_flatten_with_path(tree)
        self.fixed = [leaf for _, leaf in flat]
        self.positions, self.keys = [], []
        for i, (path, leaf) in enumerate(flat):
            p = by_path.get(path_of(path))
            if p is not None and _tracked(p) and not is_key(leaf):
                self.positions.append(i)
                self.keys.append((p.collection, p.path))
        self.values = [self.fixed[i] for i in self.positions]

    def with_values(self, values):
        now = list(self.fixed)
        for i, value in zip(self.positions, values):
            now[i] = value
        return jax.tree_util.tree_unflatten(self.treedef, now)


def _nnx_path(path) -> str:
    names = [getattr(k, "key", getattr(k, "idx", getattr(k, "name", k))) for k in path]
    if names and names[-1] == "value":
        names = names[:-1]
    return "/".join(str(n) for n in names)


def of_nnx(built, parameters: list[Parameter], call_args: tuple | None, call_kwargs: Mapping) -> Forward:
    from flax import nnx  # lazy: Flax loads only when a Flax target is used

    if call_args is None:
        raise NoForward(
            "an nnx model's inputs are its constructor's; pass the forward pass's inputs as call_args=(x,) "
            "(initcheck.audit(..., call_args=...) or initcheck.Model(..., call_args=...))"
        )
    graphdef, state = nnx.split(built)
    leaves = _Leaves(state, {p.path: p for p in parameters}, _nnx_path)

    def fn(values, inputs):
        return nnx.merge(graphdef, leaves.with_values(values))(*inputs, **call_kwargs)

    return Forward(fn, leaves.keys, leaves.values, tuple(call_args), mesh_of(leaves.fixed))


def of_equinox(built, parameters: list[Parameter], call_args: tuple | None, call_kwargs: Mapping) -> Forward:
    """An Equinox model called on ``call_args`` (per example, as Equinox layers are), its arrays
    replaced by the traced values; a stateful one (its factory returned ``(model, state)``, as
    ``eqx.nn.make_with_state`` does) is called ``model(*call_args, state)`` and its output taken."""
    from initcheck.audit._equinox import path_text

    if call_args is None:
        raise NoForward(
            "an Equinox model's forward inputs are not its factory's; pass them as call_args=(x,) "
            "(one example: Equinox layers are called per example)"
        )
    model, state = built if isinstance(built, tuple) else (built, None)
    leaves = _Leaves(model, {p.path: p for p in parameters if p.collection == "params"}, path_text)

    def fn(values, inputs):
        called = leaves.with_values(values)
        if state is None:
            return called(*inputs, **call_kwargs)
        return called(*inputs, state, **call_kwargs)[0]  # a stateful model: model(x, state) -> (y, state)

    return Forward(fn, leaves.keys, leaves.values, tuple(call_args))


def of_keras(built, parameters: list[Parameter], call_args: tuple | None, call_kwargs: Mapping) -> Forward:
    """A Keras model's ``stateless_call`` on ``call_args`` with its weights replaced by the traced values."""
    if call_args is None:
        raise NoForward("pass the Keras model's forward inputs as call_args=(x,) or as the audit's inputs")
    by_path = {p.path: p for p in parameters}
    trainable = [v.path for v in built.trainable_variables]
    frozen = [v.path for v in built.non_trainable_variables]
    current = {v.path: v.value for v in built.variables}
    keys = [(by_path[n].collection, n) for n in trainable + frozen if n in by_path and _tracked(by_path[n])]

    def fn(values, inputs):
        now = {**current, **{path: value for (_, path), value in zip(keys, values)}}
        return built.stateless_call([now[n] for n in trainable], [now[n] for n in frozen], *inputs, **call_kwargs)[0]

    return Forward(fn, keys, [current[path] for _, path in keys], tuple(call_args))


def _values(parameters: list[Parameter], keys: list) -> list[Any]:
    by_key = {(p.collection, p.path): p.value for p in parameters}
    return [by_key[k] for k in keys]
