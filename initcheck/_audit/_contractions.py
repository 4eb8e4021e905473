"""The contractions that consume each parameter, read from the jaxpr of a model's forward pass.

A parameter is followed from the jaxpr input that holds it through the operations that only lay its
values out again (``reshape``, ``transpose``, ``convert_element_type``, ``broadcast_in_dim``,
``squeeze``, slices, scaling by a scalar) and into sub-jaxprs (``jit``, ``scan``, ``remat``,
``custom_jvp/vjp``, ``cond``, ``while``), each axis of what it became remembering the parameter's own
axes it holds. A ``dot_general`` or ``conv_general_dilated`` that consumes it is a *use*:

- ``dot_general``: fan_in is the product of the contracted axes, fan_out of the parameter's free
  (kept) axes; batch axes count in neither.
- ``conv_general_dilated`` (the parameter as the kernel): fan_in = in-features x receptive field,
  fan_out = out-features x receptive field, as JAX, Haiku and PyTorch count a kernel's fans
  (``in-features`` is the kernel's own, ``C_in / feature_group_count`` for a grouped convolution).

A stacked value's stack axes (the members of a vmapped ensemble, the layers of a scan; see
``Parameter.stacked``) count in neither fan, whatever the contraction does with them: each slice is
one kernel, whose law computes its fans on the slice's shape. ``jax.vmap`` of a layer over its
members contracts the stacked kernel in one ``dot_general`` with the member axis as a batch axis
(an input mapped with it) or as a free axis (an input broadcast to every member), or folds it into a
convolution's out-features; each is the member axis, not a fan.

Any other consumer (``add``, ``gather``, ``mul`` by an array, a reduction) is named, not followed.
"""

from __future__ import annotations

import dataclasses
import math
import string
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

from jax.extend import core

Origin = tuple[frozenset, ...]  # per axis of a value: the parameter's stored axes it holds
CONTRACTIONS = ("dot_general", "conv_general_dilated")
LAYOUT = {"convert_element_type", "copy", "copy_p", "reduce_precision", "sharding_constraint", "rev", "slice",
          "dynamic_slice", "mesh_cast", "reshard", "pvary", "neg"}  # fmt: skip
SAME_AXES_MANY = {"device_put", "optimization_barrier"}  # n operands to n results, each as it came
SCALED = {"mul", "div"}  # by a scalar: the same axes (muP-style multipliers, 1/sqrt(d) scales)


@dataclasses.dataclass(frozen=True)
class Tracked:
    """A value that holds a parameter's values: which parameter, and its axes per axis."""

    key: Hashable
    origin: Origin


@dataclasses.dataclass(frozen=True)
class Use:
    """One contraction that consumes a parameter."""

    primitive: str
    spec: str  # e.g. "ab,bcd->acd", or "conv, kernel HWIO (3x3 window)"
    contracted: tuple[int, ...]  # the parameter's stored axes it contracts over
    kept: tuple[int, ...]  # the parameter's stored axes it keeps (its fan_out)
    batch: tuple[int, ...]  # the parameter's stored axes it maps over (batch dims)
    fan_in: int
    fan_out: int
    within: tuple[str, ...] = ()  # the sub-jaxprs it sits in, outermost first
    batch_size: int = 1  # the product of its batch axes
    stacked: tuple[int, ...] = ()  # the parameter's stack axes it holds (its slices: in neither fan)


@dataclasses.dataclass
class Uses:
    """What a forward pass does with each parameter: its contractions and its other consumers."""

    contractions: dict = dataclasses.field(default_factory=dict)  # key -> [Use]
    consumers: dict = dataclasses.field(default_factory=dict)  # key -> [primitive names], first seen first

    def add(self, key, use: Use) -> None:
        listed = self.contractions.setdefault(key, [])
        if use not in listed:
            listed.append(use)

    def consumed(self, key, name: str) -> None:
        listed = self.consumers.setdefault(key, [])
        if name not in listed:
            listed.append(name)


def identity(t: Tracked, ndim: int) -> Tracked:
    """A parameter entering the jaxpr: each axis holds itself."""
    return Tracked(t.key, tuple(frozenset({a}) for a in range(ndim)))


def _shape(v) -> tuple[int, ...]:
    return tuple(getattr(v.aval, "shape", ()))


def _reshaped(origin: Origin, old: Sequence[int], new: Sequence[int]) -> Origin:
    """Axes after a reshape: each run of old axes whose product equals a run of new axes gives
    every axis of that run the union of the old ones (size-1 axes hold nothing)."""
    if 0 in old or 0 in new:
        return tuple(frozenset() for _ in new)
    out: list[frozenset] = []
    i = j = 0
    while j < len(new):
        if new[j] == 1:
            out.append(frozenset())
            j += 1
            continue
        while i < len(old) and old[i] == 1:
            i += 1
        held, p_old, p_new, first = set(origin[i]), old[i], new[j], j
        i, j = i + 1, j + 1
        while p_old != p_new:
            if p_old < p_new:
                held |= origin[i]
                p_old, i = p_old * old[i], i + 1
            else:
                p_new, j = p_new * new[j], j + 1
        out.extend(frozenset(held) for _ in range(first, j))
    return tuple(out)


def through(eqn, tracked: list[Tracked | None]) -> list[Tracked | None] | None:
    """The results' tracking when ``eqn`` only lays a parameter's values out again (or scales them
    by a scalar); None when it does something else with them."""
    name, params = eqn.primitive.name, eqn.params
    if name in SAME_AXES_MANY:
        return list(tracked)
    if name == "mul" and tracked[0] is None and tracked[1] is not None:  # c * w
        return [tracked[1]] if _shape(eqn.invars[0]) == () else None
    first = tracked[0]
    if first is None or any(t is not None for t in tracked[1:]):
        return None
    if name in SCALED:  # w * c, w / c
        return [first] if _shape(eqn.invars[1]) == () else None
    if name in LAYOUT:
        return [first]
    if name == "transpose":
        return [Tracked(first.key, tuple(first.origin[p] for p in params["permutation"]))]
    if name == "squeeze":
        drop = {d % len(first.origin) for d in params["dimensions"]}
        return [Tracked(first.key, tuple(o for a, o in enumerate(first.origin) if a not in drop))]
    if name == "reshape":  # ``dimensions``: transposed first (vmap of a convolution folds members so)
        order = params.get("dimensions") or range(len(first.origin))
        before = _shape(eqn.invars[0])
        moved = tuple(first.origin[a] for a in order)
        return [Tracked(first.key, _reshaped(moved, tuple(before[a] for a in order), _shape(eqn.outvars[0])))]
    if name == "broadcast_in_dim":
        old, new = _shape(eqn.invars[0]), _shape(eqn.outvars[0])
        origin: list[frozenset] = [frozenset()] * len(new)
        for a, d in enumerate(params["broadcast_dimensions"]):
            origin[d] = first.origin[a] if old[a] == new[d] else frozenset()
        return [Tracked(first.key, tuple(origin))]
    return None


def _letters(n: int, start: int = 0) -> list[str]:
    return list(string.ascii_lowercase[start : start + n])


def _dot_spec(eqn) -> str:
    """``dot_general``'s dimension numbers as an einsum: ``ab,bc->ac``."""
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lhs, rhs = _shape(eqn.invars[0]), _shape(eqn.invars[1])
    left = _letters(len(lhs))
    right: list[str] = [""] * len(rhs)
    for a, b in (*zip(lc, rc), *zip(lb, rb)):
        right[b] = left[a]
    fresh = iter(_letters(26 - len(lhs), len(lhs)))
    right = [r or next(fresh) for r in right]
    out = [left[a] for a in lb]
    out += [left[a] for a in range(len(lhs)) if a not in lc and a not in lb]
    out += [right[b] for b in range(len(rhs)) if b not in rc and b not in rb]
    return f"{''.join(left)},{''.join(right)}->{''.join(out)}"


def _held(t: Tracked, axes, stack: Mapping[int, int] | None = None) -> tuple[int, ...]:
    """The parameter's stored axes that ``axes`` of ``t`` hold (its stack axes left out)."""
    held = set().union(*(t.origin[a] for a in axes)) if axes else set()
    return tuple(sorted(held - set(stack or {})))


def _slice_size(size: int, origin: frozenset, stack: Mapping[int, int]) -> int:
    """An axis's size without the stack axes it holds: 1 for an axis that only holds stack axes, the
    size over their product for one that merges them with a slice's own axes (a reshape)."""
    if not origin or not origin & set(stack):
        return size
    if origin <= set(stack):
        return 1
    members = math.prod(stack[a] for a in origin & set(stack))
    return size // members if size % members == 0 else size


def use_of(
    eqn, operand: int, t: Tracked, within: tuple[str, ...] = (), stack: Mapping[int, int] | None = None
) -> Use | None:
    """The use of parameter ``t`` as operand ``operand`` of a contraction, or None when its fans do
    not apply there (a parameter as a convolution's input, a batch-grouped convolution).
    ``stack``: the parameter's stack axes (stored axis -> size), which count in neither fan."""
    shape = _shape(eqn.invars[operand])
    stack = stack or {}
    size = [_slice_size(n, o, stack) for n, o in zip(shape, t.origin)]
    stacked = tuple(sorted(set().union(*t.origin) & set(stack))) if t.origin else ()
    if eqn.primitive.name == "dot_general":
        (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
        contracted, batch = (lc, lb) if operand == 0 else (rc, rb)
        free = [a for a in range(len(shape)) if a not in contracted and a not in batch]
        return Use(
            "dot_general",
            _dot_spec(eqn),
            _held(t, contracted, stack),
            _held(t, free, stack),
            _held(t, batch, stack),
            math.prod(size[a] for a in contracted),
            math.prod(size[a] for a in free if t.origin[a]),
            within,
            math.prod(size[a] for a in batch),
            stacked,
        )
    if operand != 1 or eqn.params.get("batch_group_count", 1) != 1:
        return None
    out_dim, in_dim, *spatial = eqn.params["dimension_numbers"].rhs_spec
    window = math.prod(shape[a] for a in spatial)
    names = {out_dim: "O", in_dim: "I"} | dict(zip(spatial, "DHW"[-len(spatial) :] if len(spatial) <= 3 else "S" * 9))
    groups = eqn.params.get("feature_group_count", 1)
    spec = (
        f"conv, kernel {''.join(names[a] for a in range(len(shape)))} "
        f"({'x'.join(str(shape[a]) for a in spatial) or 'no'} window{f', {groups} groups' if groups > 1 else ''})"
    )
    return Use(
        "conv_general_dilated",
        spec,
        _held(t, [in_dim, *spatial], stack),
        _held(t, [out_dim], stack),
        (),
        size[in_dim] * window,
        size[out_dim] * window,
        within,
        1,
        stacked,
    )


@dataclasses.dataclass(frozen=True)
class Inner:
    """A sub-jaxpr of an equation and how the equation's operands enter it."""

    label: str
    jaxpr: Any  # core.Jaxpr
    consts: Sequence
    operands: tuple[int | None, ...]  # per sub-jaxpr input: the operand it receives, or None
    sliced: tuple[bool, ...]  # per sub-jaxpr input: it gets one slice of its operand (scan's xs)
    results: bool  # its results are the equation's results, one for one


def _open(j) -> tuple[Any, Sequence]:
    return (j.jaxpr, j.consts) if isinstance(j, core.ClosedJaxpr) else (j, ())


def inner(eqn) -> list[Inner]:
    """The sub-jaxprs of ``eqn`` with their operands (empty for an equation without any)."""
    name, params, n = eqn.primitive.name, eqn.params, len(eqn.invars)
    if name == "scan":
        body, consts = _open(params["jaxpr"])
        n_consts, n_carry = params["num_consts"], params["num_carry"]
        sliced = tuple(i >= n_consts + n_carry for i in range(n))
        return [Inner("scan", body, consts, tuple(range(n)), sliced, False)]
    if name == "while":
        cn, bn = params["cond_nconsts"], params["body_nconsts"]
        carry = tuple(range(cn + bn, n))
        out = []
        for label, j, ops in (("while body", params["body_jaxpr"], (*range(cn, cn + bn), *carry)),
                              ("while condition", params["cond_jaxpr"], (*range(cn), *carry))):  # fmt: skip
            jaxpr, consts = _open(j)
            out.append(Inner(label, jaxpr, consts, ops, (False,) * len(ops), False))
        return out
    if name == "cond":
        out = []
        for k, branch in enumerate(params["branches"]):
            jaxpr, consts = _open(branch)
            out.append(Inner(f"cond branch {k}", jaxpr, consts, tuple(range(1, n)), (False,) * (n - 1), True))
        return out
    subs = [v for v in params.values() if isinstance(v, (core.ClosedJaxpr, core.Jaxpr))]
    if len(subs) == 1:
        jaxpr, consts = _open(subs[0])
        if len(jaxpr.invars) == n:
            results = len(jaxpr.outvars) == len(eqn.outvars)
            return [Inner(str(params.get("name", name)), jaxpr, consts, tuple(range(n)), (False,) * n, results)]
    return []


def entering(sub: Inner, tracked: list[Tracked | None]) -> list[Tracked | None]:
    """The tracking of a sub-jaxpr's inputs, from the equation's operands."""
    out: list[Tracked | None] = []
    for op, sliced in zip(sub.operands, sub.sliced):
        t = tracked[op] if op is not None else None
        out.append(Tracked(t.key, t.origin[1:]) if t is not None and sliced else t)
    return out


def find_uses(closed, tracked_inputs: dict[int, Hashable], stacked: Mapping[Any, Sequence[int]] | None = None) -> Uses:
    """Every contraction (and other consumer) of the jaxpr inputs named in ``tracked_inputs``
    (input index -> parameter key) in ``closed``, a ``ClosedJaxpr``; ``stacked``: the stack axes
    of the stacked parameters (key -> stored axes), which count in neither fan."""
    found = Uses()
    jaxpr = closed.jaxpr
    start, stacks = {}, {}
    for i, v in enumerate(jaxpr.invars):
        if i not in tracked_inputs:
            continue
        key, shape = tracked_inputs[i], _shape(v)
        start[v] = identity(Tracked(key, ()), len(shape))
        axes = (stacked or {}).get(key, ())
        if axes and all(-len(shape) <= a < len(shape) for a in axes):
            stacks[key] = {a % len(shape): shape[a] for a in axes}
    _walk(jaxpr, start, found, (), stacks)
    return found


def _walk(jaxpr, env: dict, found: Uses, within: tuple[str, ...], stacks: Mapping[Hashable, Mapping[int, int]]) -> dict:
    def get(v):
        return env.get(v) if isinstance(v, core.Var) else None

    for eqn in jaxpr.eqns:
        tracked = [get(v) for v in eqn.invars]
        if not any(tracked):
            continue
        name = eqn.primitive.name
        if name in CONTRACTIONS:
            for i, t in enumerate(tracked):
                if t is None:
                    continue
                use = use_of(eqn, i, t, within, stacks.get(t.key))
                if use is not None:
                    found.add(t.key, use)
                else:
                    found.consumed(t.key, f"{name} (not as a kernel)")
            continue
        results = through(eqn, tracked)
        if results is not None:
            env.update({v: r for v, r in zip(eqn.outvars, results) if r is not None})
            continue
        subs = inner(eqn)
        for sub in subs:
            sub_env = {v: t for v, t in zip(sub.jaxpr.invars, entering(sub, tracked)) if t is not None}
            out_env = _walk(sub.jaxpr, sub_env, found, (*within, sub.label), stacks)
            if sub.results:
                for outer, v in zip(eqn.outvars, sub.jaxpr.outvars):
                    if isinstance(v, core.Var) and v in out_env:
                        env[outer] = out_env[v]
        if not subs:
            for t in tracked:
                if t is not None:
                    found.consumed(t.key, name)
    return env
