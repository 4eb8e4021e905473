"""The signal a model propagates at init: second moments, layer by layer, forward and backward.

The forward pass's jaxpr is evaluated on the values the init made and on inputs of unit variance
(floating inputs replaced by standard normal draws of a fixed key; integer inputs, e.g. token ids,
kept). A *layer* is one contraction that consumes a parameter (see ``_contractions``), in the order
the forward pass runs them; each step of a scan over layers is a layer of its own (the scan stays a
scan: its body returns each step's moments). For each layer: the second moment ``E[x^2]`` of its
input (the operand that is not the parameter), of its output (the contraction, before any bias),
and of the gradient ``E[g^2]`` of the loss ``L = sum(y * u)`` with respect to its output, ``u``
standard normal draws of a fixed key laid over every floating model output ``y`` (so the gradient
arriving at the outputs has unit variance).

An abstract evaluation finds the layers; then one compiled program (XLA's quickest compile) runs
``jax.grad`` of the evaluation with a zero added to every layer's output, whose gradient is the
gradient at that output. Layers inside ``while`` loops and ``cond`` branches are not shown (which
steps run is data); the profile says so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Hashable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core

from initcheck._audit import _contractions as contractions
from initcheck._audit._contractions import Tracked


@dataclasses.dataclass(frozen=True)
class SignalLayer:
    """One layer of the profile."""

    name: str  # the parameter's module, with the step of each scan it runs in: "ScanBlock_0/Dense_0 [2]"
    parameter: str  # the parameter the contraction consumes
    op: str  # the contraction: "ab,bc->ac" or "conv, kernel HWIO (3x3 window)"
    shape: tuple[int, ...]  # the output's shape
    input: float  # E[x^2] of the layer's input
    forward: float  # E[y^2] of its output
    gradient: float  # E[g^2] of the loss's gradient with respect to its output

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"shape": list(self.shape)}


@dataclasses.dataclass(frozen=True)
class Signal:
    """The signal profile of a model at init."""

    layers: tuple[SignalLayer, ...]
    inputs: float  # E[x^2] of the model's floating inputs (1 when there are some; NaN when none)
    outputs: float  # E[y^2] of its floating outputs
    note: str = ""  # what the profile leaves out
    integer_inputs: int = 0  # inputs that are integers (token ids, indices): kept as given, no second moment

    @property
    def inputs_text(self) -> str:
        """The inputs, as the profile's header says them: their E[x^2] where they are floating; for
        integer inputs (token ids) that they are not a second moment (never a bare NaN)."""
        ids = "token ids (integers): not a second moment"
        if math.isnan(self.inputs):
            return f"inputs: {ids}" if self.integer_inputs else "inputs: none floating"
        floating = f"inputs E[x^2]={self.inputs:.3g}"
        return f"{floating} (the floating ones; the other inputs are {ids})" if self.integer_inputs else floating

    def as_dict(self) -> dict:
        return {
            "inputs": None if math.isnan(self.inputs) else self.inputs,
            "integer_inputs": self.integer_inputs,
            "inputs_text": self.inputs_text,
            "outputs": self.outputs,
            "note": self.note,
            "layers": [layer.as_dict() for layer in self.layers],
        }

    def table(self) -> str:
        """The profile as a text table (terminal)."""
        head = f"{'depth':>5}  {'layer':<40} {'op':<24} {'E[x^2] in':>10} {'E[y^2] out':>11} {'E[g^2] grad':>12}"
        rows = [
            f"{i:>5}  {layer.name[:40]:<40} {layer.op[:24]:<24} {layer.input:>10.3g} {layer.forward:>11.3g} "
            f"{layer.gradient:>12.3g}"
            for i, layer in enumerate(self.layers)
        ]
        lines = [
            f"signal at init ({self.inputs_text}, outputs E[y^2]={self.outputs:.3g}; "
            "gradient of a loss whose gradient at the outputs has unit variance)",
            head,
            *rows,
        ]
        if self.note:
            lines.append(self.note)
        return "\n".join(lines)


def _second_moment(x) -> float:
    return float(_m2(x))


def _m2(x):
    """E[|x|^2] as a float32 scalar (traced or not)."""
    x = jnp.asarray(x)
    if x.size == 0:
        return jnp.float32(0)
    if jnp.iscomplexobj(x):
        return jnp.mean(jnp.abs(x.astype(jnp.complex64)) ** 2)
    return jnp.mean(jnp.square(x.astype(jnp.float32)))


def _floating(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


@dataclasses.dataclass
class _Seen:
    """A layer as the evaluation saw it; ``moments`` = (E[x^2], E[y^2]), one per step of the scans
    around it (arrays of the scans' lengths, outermost first; scalars outside any scan)."""

    label: str
    key: Hashable
    op: str
    shape: tuple[int, ...]
    dtype: Any
    moments: Any


@dataclasses.dataclass
class _Block:
    """The layers of a scan's body: each of its ``length`` steps runs them all, in order."""

    entries: list
    length: int


def _leaves(entries: list) -> list[_Seen]:
    return [leaf for e in entries for leaf in ([e] if isinstance(e, _Seen) else _leaves(e.entries))]


def _moments(entries: list) -> list:
    return [e.moments if isinstance(e, _Seen) else _moments(e.entries) for e in entries]


def _with_moments(entries: list, moments: list) -> list:
    return [
        dataclasses.replace(e, moments=m) if isinstance(e, _Seen) else _Block(_with_moments(e.entries, m), e.length)
        for e, m in zip(entries, moments)
    ]


@dataclasses.dataclass
class _Run:
    """One evaluation of one jaxpr level. ``added``: the zeros added to its layers' outputs, one per
    leaf layer in order (None: the recording pass); ``plan``: the recording pass's run of the same
    level (it says how many layers each scan body holds)."""

    added: list | None
    plan: _Run | None = None
    entries: list = dataclasses.field(default_factory=list)
    scans: list = dataclasses.field(default_factory=list)  # the body run of each scan, in order
    used: int = 0  # the entries of ``added`` consumed so far
    skipped: set = dataclasses.field(default_factory=set)  # what the profile cannot show


def _bind(eqn, values):
    bound = eqn.primitive.get_bind_params(eqn.params)  # (subfuns, params) before JAX 0.8, params after
    subfuns, params = bound if isinstance(bound, tuple) else ((), bound)
    with eqn.ctx.manager:
        out = eqn.primitive.bind(*subfuns, *values, **params)
    return list(out) if eqn.primitive.multiple_results else [out]


def _evaluate(jaxpr, consts, args, tracked, run: _Run, names: Callable) -> list:
    env: dict = {}
    marks: dict = {}

    def read(v):
        return v.val if isinstance(v, core.Literal) else env[v]

    for v, c in zip(jaxpr.constvars, consts):
        env[v] = c
    for v, a, t in zip(jaxpr.invars, args, tracked):
        env[v] = a
        if t is not None:
            marks[v] = t
    for eqn in jaxpr.eqns:
        values = [read(v) for v in eqn.invars]
        tracks = [marks.get(v) if isinstance(v, core.Var) else None for v in eqn.invars]
        outs, out_tracks = _step(eqn, values, tracks, run, names)
        for v, x, t in zip(eqn.outvars, outs, out_tracks):
            if not isinstance(v, core.DropVar):
                env[v] = x
                if t is not None:
                    marks[v] = t
    return [read(v) for v in jaxpr.outvars]


def _step(eqn, values, tracks, run: _Run, names: Callable) -> tuple[list, list]:
    none = [None] * len(eqn.outvars)
    if not any(tracks):
        return _bind(eqn, values), none
    name = eqn.primitive.name
    if name in contractions.CONTRACTIONS:
        return _contraction(eqn, values, tracks, run, names), none
    if (results := contractions.through(eqn, tracks)) is not None:
        return _bind(eqn, values), results
    if name == "scan" and eqn.params["length"] > 0:
        return _scan(eqn, values, tracks, run, names), none
    subs = contractions.inner(eqn)
    if len(subs) == 1 and subs[0].results and name not in ("while", "cond"):
        sub = subs[0]
        outs = _evaluate(sub.jaxpr, sub.consts, values, contractions.entering(sub, tracks), run, names)
        return outs, none
    if name in ("while", "cond"):
        run.skipped.add(f"the layers inside {name} (which steps run is data)")
    return _bind(eqn, values), none


def _contraction(eqn, values, tracks, run: _Run, names: Callable) -> list:
    out = _bind(eqn, values)
    operand = next((i for i, t in enumerate(tracks) if t is not None and contractions.use_of(eqn, i, t)), None)
    if operand is None:
        return out
    use = contractions.use_of(eqn, operand, tracks[operand])
    assert use is not None
    if run.added is not None:
        out = [out[0] + run.added[run.used]]
    run.used += 1
    key = tracks[operand].key
    label = names(key).rpartition("/")[0] or "(model)"
    y, x = out[0], values[1 - operand]
    shape = tuple(int(d) for d in jnp.shape(y))
    run.entries.append(_Seen(label, key, use.spec, shape, jnp.result_type(y), (_m2(x), _m2(y))))
    return out


def _scan(eqn, values, tracks, run: _Run, names) -> list:
    """A scan whose body runs layers: the same scan, its body evaluated step by step inside it, each
    step's zeros added (scanned over) and each step's moments returned as extra outputs."""
    p = eqn.params
    (sub,) = contractions.inner(eqn)
    n_consts, n_carry = p["num_consts"], p["num_carry"]
    consts, carry, xs = values[:n_consts], values[n_consts : n_consts + n_carry], values[n_consts + n_carry :]
    inside = contractions.entering(sub, tracks)
    plan = run.plan.scans[len(run.scans)] if run.plan is not None else None
    n = len(_leaves(plan.entries)) if plan is not None else 0
    added = run.added[run.used : run.used + n] if run.added is not None else []
    run.used += n
    body_runs: list[_Run] = []

    def body(carry, scanned):
        xs_i, added_i = scanned
        step = _Run(list(added_i) if run.added is not None else None, plan=plan, skipped=run.skipped)
        outs = _evaluate(sub.jaxpr, sub.consts, [*consts, *carry, *xs_i], inside, step, names)
        body_runs.append(step)
        return outs[:n_carry], (outs[n_carry:], _moments(step.entries))

    carry, (ys, moments) = jax.lax.scan(body, carry, (xs, added), length=p["length"], reverse=p["reverse"])
    step = body_runs[-1]  # a body traced twice (carry types) records the same layers twice
    run.scans.append(step)
    run.entries.append(_Block(_with_moments(step.entries, moments), p["length"]))
    return [*carry, *ys]


def _unit_inputs(inputs, seed: int):
    """Floating inputs replaced by standard normal draws (a fixed key per leaf), others kept; and
    the floating ones, and how many integer ones (token ids) there are."""
    leaves, treedef = jax.tree_util.tree_flatten(inputs)
    keys = jax.random.split(jax.random.key(seed), max(1, len(leaves)))
    out = [jax.random.normal(k, jnp.shape(x), jnp.result_type(x)) if _floating(x) else x for k, x in zip(keys, leaves)]
    integers = sum(1 for x in leaves if jnp.issubdtype(jnp.result_type(x), jnp.integer))
    return jax.tree_util.tree_unflatten(treedef, out), [x for x in out if _floating(x)], integers


def _rows(entries: list, gradients: dict, names: Callable, index: tuple = ()) -> list[SignalLayer]:
    """The layers in the order the forward pass runs them: a scan's steps one after the other."""
    rows = []
    for e in entries:
        if isinstance(e, _Block):
            for i in range(e.length):
                rows += _rows(e.entries, gradients, names, (*index, i))
            continue
        x, y = (float(np.asarray(m)[index]) for m in e.moments)
        g = float(np.asarray(gradients[id(e)])[index])
        suffix = "".join(f" [{i}]" for i in index)
        rows.append(SignalLayer(e.label + suffix, names(e.key), e.op, e.shape, x, y, g))
    return rows


def _run_once(fn, *args):
    """``fn(*args)`` compiled for one run: XLA's quickest compile (optimization level 0) where the
    installed XLA takes the option, its default otherwise."""
    lowered = jax.jit(fn).lower(*args)
    try:
        compiled = lowered.compile(compiler_options={"xla_backend_optimization_level": 0})
    except Exception:  # noqa: BLE001 - an XLA without the option compiles as usual
        compiled = lowered.compile()
    return compiled(*args)


def profile(closed, values: list, inputs, keys: list, names: Callable[[Hashable], str], seed: int = 0) -> Signal:
    """The signal profile of the forward pass ``closed`` (a ``ClosedJaxpr`` whose first inputs are
    ``values``, one per parameter key of ``keys``, then the leaves of ``inputs``). The layers are
    found by an abstract evaluation, then every number comes from one compiled program."""
    unit, floating_inputs, integer_inputs = _unit_inputs(inputs, seed)
    data = [*values, *jax.tree_util.tree_leaves(unit)]
    tracked: list[Tracked | None] = [None] * len(closed.jaxpr.invars)
    for i, (key, value) in enumerate(zip(keys, values)):
        tracked[i] = contractions.identity(Tracked(key, ()), jnp.ndim(value))

    def forward(data, run: _Run):
        return _evaluate(closed.jaxpr, closed.consts, data, tracked, run, names)

    plan = _Run(None)

    def recorded(data):
        outs = forward(data, plan)
        return _moments(plan.entries), outs

    moment_shapes, out_shapes = jax.eval_shape(recorded, data)
    layout = _with_moments(plan.entries, moment_shapes)  # each layer's moments: one per step of its scans
    leaves = _leaves(layout)
    floating = [i for i, y in enumerate(out_shapes) if jnp.issubdtype(y.dtype, jnp.inexact)]
    draw_keys = jax.random.split(jax.random.key(seed + 1), max(1, len(floating)))
    weights = [jax.random.normal(k, out_shapes[i].shape, jnp.float32) for k, i in zip(draw_keys, floating)]

    def loss(added, data):
        run = _Run(added, plan=plan)
        outs = forward(data, run)
        ys = [outs[i] for i in floating]
        total = sum((jnp.sum(jnp.real(y).astype(jnp.float32) * w) for y, w in zip(ys, weights)), jnp.float32(0))
        return total, (_moments(run.entries), [_m2(y) for y in ys])

    def per_step(g, leaf: _Seen):  # E[g^2] over the layer's output, one per step of its scans
        return jnp.mean(jnp.square(g.astype(jnp.float32)), axis=tuple(range(g.ndim - len(leaf.shape), g.ndim)))

    def with_gradients(added, data):
        grads, moments = jax.grad(loss, has_aux=True)(added, data)
        return [per_step(g, leaf) for g, leaf in zip(grads, leaves)], moments

    def without_gradients(added, data):
        return [jnp.full(leaf.moments[0].shape, jnp.nan, jnp.float32) for leaf in leaves], loss(added, data)[1]

    zeros = [jnp.zeros((*leaf.moments[0].shape, *leaf.shape), leaf.dtype) for leaf in leaves]
    try:
        grads, (moments, ys) = _run_once(with_gradients, zeros, data)
    except Exception as exc:  # noqa: BLE001 - the forward profile stands without its gradients
        plan.skipped.add(f"the gradients ({type(exc).__name__}: {str(exc)[:200]})")
        grads, (moments, ys) = _run_once(without_gradients, zeros, data)
    grads, moments, ys = jax.device_get((grads, moments, ys))  # one host copy, not one per layer and step
    measured = _with_moments(plan.entries, moments)
    gradients = {id(leaf): g for leaf, g in zip(_leaves(measured), grads)}
    layers = _rows(measured, gradients, names)
    mean = lambda xs: float(np.mean([float(x) for x in xs])) if len(xs) else float("nan")
    note = "; ".join(sorted(plan.skipped))
    inputs_m2 = mean([_second_moment(x) for x in floating_inputs])
    return Signal(tuple(layers), inputs_m2, mean(ys), f"not shown: {note}" if note else "", integer_inputs)
