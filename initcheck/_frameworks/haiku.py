"""Audit a Haiku ``Transformed``: watch ``init`` create every parameter and state, and every operation
of every ``PRNGSequence``, then derive each key with initcheck's own code and run each declared
initializer on it.

The rules (``haiku/_src/base.py``, ``layer_stack.py``): ``init(rng)`` draws from a sequence whose state
is a key and a queue; ``next`` pops the queue, first refilling it with ``reserve(R)``
(``state, *queue = split(state, R + 1)``, ``R = rng_reserve_size``); control flow (``hk.scan``,
``hk.cond``, ...) tops the queue up to ``R`` or truncates it and hands the state in and out;
``hk.remat`` hands its body the state as it is, and the sequence continues from the state the body
leaves (a sequence is derived again once the one started inside is).
``hk.with_rng(key)`` starts a sequence at a key the model chose. ``hk.layer_stack(L)`` draws one key
``r_0`` and runs layer ``l``'s own ``init`` on ``split(r_l, 3)[0]`` with ``r_{l+1} = split(r_l, 3)[1]``,
stacking its parameters on a new leading axis. Keys drawn inside a stack are traced: initcheck reads
their concrete values, layer by layer, with ``jax.debug.callback``.

Every key initcheck derives is kept by its bytes; a sequence whose start (or a state handed back
by control flow) is not one of them cannot be derived, and is named as such.

The abstract path (the memory budget, ``record_abstract``) watches the same init traced under
``jax.jit``: every key is then traced and read with ``jax.debug.callback``, and the program returns
nothing, so that XLA computes the keys and none of the values. Each value is made later, alone: by
its declared initializer layer by layer, or by the model's own init pruned to it.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import functools
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

import initcheck.strategies as strategies  # (installed from strategies/: mypy reads it as Any)
from initcheck import laws
from initcheck._entries import NO_16BIT_QR, CatalogEntry, complex_dtypes, real_dtypes, wide_dtypes
from initcheck._frameworks import _observed as observed
from initcheck._frameworks import derive, haiku_laws
from initcheck._frameworks._declared import declared_law
from initcheck._frameworks._protocol import IGNORED_KEY, SAME_KEY, Recording, Setting
from initcheck._record import (
    Forward,
    Lazy,
    Model,
    Parameter,
    apply_inputs,
    guarded,
    mesh_of,
    nested,
    replaced,
    tracked,
    tree_values,
    unbound_axes,
    values_of,
    with_bound_axes,
)

FIXED_SEEDS = 1024  # a sequence started at PRNGKey(s) for s below this was given a fixed key


@dataclasses.dataclass(eq=False)
class _Obs:
    """A key seen while the model was built: its raw data, once per slice (per layer of the stacks
    it was traced in), filled in by ``jax.debug.callback`` when traced."""

    data: list = dataclasses.field(default_factory=list)
    unreadable: str = ""
    impl: Any = None  # a typed key's implementation (None: raw uint32 key data)

    def key(self, j: int):
        """Slice ``j`` of the key as the model had it."""
        data = jax.numpy.asarray(np.frombuffer(self.data[j], dtype=np.uint32))
        return data if self.impl is None else jax.random.wrap_key_data(data, impl=self.impl)


@dataclasses.dataclass(eq=False)
class _Next:
    obs: _Obs
    seq: Any = None  # the _Seq it came from
    own: dict = dataclasses.field(default_factory=dict)  # slice -> initcheck's key
    spare: dict = dataclasses.field(default_factory=dict)  # slice -> the sequence's key after it
    text: dict = dataclasses.field(default_factory=dict)  # slice -> the key as an expression


@dataclasses.dataclass(eq=False)
class _Seq:
    start: tuple  # ("key", _Obs) | ("state", [_Obs, ...]) | ("seed", int)
    ops: list = dataclasses.field(
        default_factory=list
    )  # ("reserve", n) | ("fill",) | ("next", _Next) | ("replace", [_Obs])
    done: set = dataclasses.field(default_factory=set)  # slices simulated
    stuck: dict = dataclasses.field(default_factory=dict)  # slice -> why it cannot be derived
    fixed: str = ""  # set when the model started it at a fixed key


@dataclasses.dataclass(eq=False)
class _Stack:
    count: int
    seq: _Seq | None  # the sequence the stack drew its key from
    first: int  # index into the recording's nexts at entry
    key: _Next | None = None  # the key r_0 it drew


@dataclasses.dataclass(eq=False)
class _Created:
    collection: str  # "params" or "state"
    name: str  # the full name as stored, lift prefix included
    shape: tuple
    dtype: Any
    init: Callable[..., Any]
    value: Any
    nexts: list  # keys its initializer drew
    stacks: tuple  # layer stacks it was made in, outermost first
    seen: Any = None  # a known initializer whose output its initializer returned
    outer: bool = False  # made at the top of the recorded init (not inside a transform's own trace)
    made: list | None = None  # a state made in a layer stack (eager): its value at creation, per slice


@dataclasses.dataclass
class _Recording:
    seqs: dict = dataclasses.field(default_factory=dict)  # id(PRNGSequence) -> _Seq
    alive: list = dataclasses.field(default_factory=list)  # the sequences themselves (ids stay unique)
    order: list = dataclasses.field(default_factory=list)  # _Seq in creation order
    nexts: list = dataclasses.field(default_factory=list)  # (_Seq, _Next) in order
    stacks: list = dataclasses.field(default_factory=list)
    active: list = dataclasses.field(default_factory=list)  # stacks being traced
    created: list = dataclasses.field(default_factory=list)
    set_names: set = dataclasses.field(default_factory=set)  # state names written by hk.set_state
    known: list = dataclasses.field(default_factory=list)  # known initializers seen called
    key_ops: list = dataclasses.field(default_factory=list)  # jax.random.split/fold_in on concrete keys
    top: Any = None  # the abstract path: the trace of the jitted init (its top level), None when eager


def _observe(key, copies: int = 1) -> _Obs:
    """``key``'s raw data once per slice: read when the program runs for a traced key; ``copies``
    times for a concrete one (made before the layer stacks around it, the same in each layer)."""
    obs = _Obs()
    typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    data = jax.random.key_data(key) if typed else key
    obs.impl = jax.random.key_impl(key) if typed else None
    if isinstance(data, jax.core.Tracer):
        try:
            jax.debug.callback(lambda d: obs.data.append(np.asarray(d).tobytes()), data, ordered=True)
        except Exception as exc:  # noqa: BLE001 - a transform that forbids callbacks
            obs.unreadable = f"its keys are traced and cannot be read ({type(exc).__name__})"
    else:
        obs.data.extend([np.asarray(data).tobytes()] * copies)
    return obs


@contextlib.contextmanager
def _watching(rec: _Recording):
    from haiku._src import base  # lazy: Haiku loads only when a Haiku target is used
    from haiku._src import layer_stack as stacking  # lazy: Haiku loads only when a Haiku target is used

    seq_cls = base.PRNGSequence
    originals = {
        name: getattr(seq_cls, name)
        for name in ("__init__", "reserve", "reserve_up_to_full", "replace_internal_state", "__next__", "next")
    }
    stack_call = stacking._LayerStack.__call__

    def seq_of(seq) -> _Seq:
        return rec.seqs.get(id(seq)) or _unknown(seq)

    def _unknown(seq) -> _Seq:  # made before the watch began
        s = _Seq(("state", []))
        s.stuck = {"*": "a sequence made before initcheck watched"}
        rec.seqs[id(seq)] = s
        rec.alive.append(seq)
        return s

    def layers() -> int:  # the layers of the stacks being traced: a concrete key is the same in each
        return math.prod(s.count for s in rec.active)

    def init(self, key_or_seed):
        originals["__init__"](self, key_or_seed)
        observe = functools.partial(_observe, copies=layers())
        if isinstance(key_or_seed, tuple):
            start = ("state", [observe(key_or_seed[0]), *map(observe, key_or_seed[1])])
        elif isinstance(key_or_seed, int):
            start = ("seed", key_or_seed)
        else:
            start = ("key", observe(self._key))
        s = _Seq(start)
        rec.seqs[id(self)] = s
        rec.alive.append(self)
        rec.order.append(s)

    inside: list = []  # in next or reserve_up_to_full: the reserve they make is initcheck's to derive

    def reserve(self, num):
        if num > 0 and not inside:  # hk.reserve_rng_keys, take
            seq_of(self).ops.append(("reserve", num))
        return originals["reserve"](self, num)

    def reserve_up_to_full(self):
        seq_of(self).ops.append(("fill",))
        inside.append(True)
        try:
            return originals["reserve_up_to_full"](self)
        finally:
            inside.pop()

    def replace_internal_state(self, state):
        key, subkeys = state
        observe = functools.partial(_observe, copies=layers())
        seq_of(self).ops.append(("replace", [observe(key), *map(observe, subkeys)]))
        return originals["replace_internal_state"](self, state)

    def next_key(self):
        inside.append(True)
        try:
            key = originals["__next__"](self)
        finally:
            inside.pop()
        s = seq_of(self)
        n = _Next(_observe(key), s)
        s.ops.append(("next", n))
        rec.nexts.append((s, n))
        return key

    def layer_stack_call(self, x, *args, **kwargs):
        current = base.current_frame().rng_stack.peek() if base.inside_transform() else None
        stack = _Stack(self._count, rec.seqs.get(id(current)) if current is not None else None, len(rec.nexts))
        rec.stacks.append(stack)
        rec.active.append(stack)
        try:
            return stack_call(self, x, *args, **kwargs)
        finally:
            rec.active.pop()

    def creator(collection):
        def create(next_creator, shape, dtype, init, context):
            start, seen = len(rec.nexts), len(rec.known)
            value = next_creator(shape, dtype, init)
            rec.created.append(
                _Created(
                    collection,
                    _stored_name(context),
                    tuple(shape),
                    dtype,
                    init,
                    value,
                    [n for _, n in rec.nexts[start:]],
                    tuple(rec.active),
                    observed.made_by(value, rec.known[seen:]),
                    _outer(value, rec),
                    _made(value) if collection == "state" and rec.active and rec.top is None else None,
                )
            )
            return value

        return create

    def setter(next_setter, value, context):
        rec.set_names.add(_stored_name(context))
        return next_setter(value)

    patches = {
        "__init__": init,
        "reserve": reserve,
        "reserve_up_to_full": reserve_up_to_full,
        "replace_internal_state": replace_internal_state,
        "__next__": next_key,
        "next": next_key,
    }
    for name, fn in patches.items():
        setattr(seq_cls, name, fn)
    stacking._LayerStack.__call__ = layer_stack_call
    try:
        with (
            base.custom_creator_unsafe(creator("params"), params=True, state=False),
            base.custom_creator_unsafe(creator("state"), params=False, state=True),
            base.state_setter_stack(setter),
            observed.watching(rec.known, rec.key_ops),
            _traced_key_ops(rec),
        ):
            yield
    finally:
        for name, fn in originals.items():
            setattr(seq_cls, name, fn)
        stacking._LayerStack.__call__ = stack_call


def _made(value) -> list | None:
    """A state's value as made in a layer stack (eager), read slice by slice as the program runs:
    ``hk.layer_stack`` stores each layer's state after one apply of the layer (``per_layer_init_fn``),
    which updates it (an ``hk.BatchNorm``'s moving averages in training mode); outside a stack,
    ``init`` returns the state as it was created."""
    if not isinstance(value, jax.core.Tracer):
        return None
    made: list = []
    try:
        jax.debug.callback(lambda v: made.append(np.asarray(v)), value, ordered=True)
    except Exception:  # noqa: BLE001 - a transform that forbids callbacks: the stored value is audited
        return None
    return made


def _trace_state():
    from jax.extend import core  # the public name of JAX's trace state (haiku/_src/base.py reads it too)

    return core.get_opaque_trace_state(convention="haiku")


def _outer(value, rec: _Recording) -> bool:
    """Whether ``value`` was made at the top of the recorded init: concrete when eager; in the
    jitted trace itself (not a scan's, cond's or vmap's inside it) on the abstract path."""
    if rec.top is None:
        return not isinstance(value, jax.core.Tracer)
    return _trace_state() == rec.top


@contextlib.contextmanager
def _traced_key_ops(rec: _Recording):
    """On the abstract path (the init traced under ``jax.jit``), also every ``jax.random.split``
    and ``fold_in`` made at the top of the trace, whose keys the eager run would see concrete
    (``observed.watching`` records those): their data are read when the program runs. Inside
    ``observed.watching``, whose profile hook this one calls first."""
    inner = sys.getprofile()
    if rec.top is None or inner is None:  # eager, or under another profiler (nothing is watched)
        yield
        return
    codes = {jax.random.split.__code__: "split", jax.random.fold_in.__code__: "fold_in"}
    busy: list[bool] = []  # reading a key op runs JAX code: not watched

    def hook(frame, event, arg):
        if busy:
            return
        inner(frame, event, arg)
        if event == "return" and (kind := codes.get(frame.f_code)) is not None:
            busy.append(True)
            try:
                _traced_key_op(rec, kind, frame.f_locals, arg)
            except Exception:  # noqa: BLE001 - an op initcheck cannot read is not followed
                pass
            finally:
                busy.pop()

    sys.setprofile(hook)
    try:
        yield
    finally:
        sys.setprofile(inner)


def _traced_key_op(rec: _Recording, kind: str, local_vars, output) -> None:
    """A split or fold-in of a traced key at the top of the trace (what the eager run sees concrete)."""
    if isinstance(local_vars.get("key"), jax.core.Tracer) and _trace_state() == rec.top:
        observed.record_traced_key_op(rec.key_ops, kind, local_vars, output)


def _stored_name(context) -> str:
    """A parameter's or state's name as ``init`` returns it: the enclosing lifts' prefix included."""
    prefix = (context.lifted_prefix_name or "").rstrip("/")
    return f"{prefix}/{context.full_name}" if prefix else context.full_name


def _fixed_seed(data: bytes) -> int | None:
    """s when ``data`` is the raw data of ``PRNGKey(s)`` (or ``jax.random.key(s)``) for a small s."""
    made = np.asarray(jax.vmap(jax.random.PRNGKey)(np.arange(FIXED_SEEDS, dtype=np.uint32)))
    hits = [s for s, row in enumerate(made) if row.tobytes() == data]
    return hits[0] if hits else None


def _slices(s: _Seq) -> int | None:
    """How many slices a sequence was seen in (None before any concrete value arrived)."""
    kind, what = s.start
    if kind == "key":
        return len(what.data) or None
    if kind == "state" and what:
        return len(what[0].data) or None
    return 1


def _simulate(s: _Seq, j: int, keys: observed.DerivedKeys, reserve_size: int) -> bool:
    """Derive slice ``j`` of sequence ``s`` op by op; False while its start, or a state control flow
    handed it, is not derived yet (``hk.remat`` hands back the state of a sequence started inside it
    from this one's state: derived only once this one is followed up to there)."""
    kind, what = s.start
    if kind == "seed":
        found = keys.get(derive.key_bytes(derive.haiku_root(what)))
        if found is None:
            s.fixed = f"a sequence started at the fixed seed {what}, the same for every rng the model is given"
            return False
        state, queue, text = found[0], collections.deque[jax.Array](), found[1]
    elif kind == "key":
        found = keys.get(what.data[j]) if j < len(what.data) else None
        if found is None:
            return False
        state, queue, text = found[0], collections.deque(), found[1]
    else:
        found = [keys.get(o.data[j]) if j < len(o.data) else None for o in what]
        if not found or any(f is None for f in found):
            return False
        state, queue, text = found[0][0], collections.deque(f[0] for f in found[1:]), found[0][1]
    count = 0

    def reserve(num: int):
        nonlocal state
        new = list(jax.random.split(state, num + 1))
        state = new[0]
        queue.extend(new[1:])
        for k in new:
            keys.add(k, f"a key of the sequence started at {text}")

    for op in s.ops:
        if op[0] == "reserve":
            reserve(op[1])
        elif op[0] == "fill":  # control flow: the queue topped up to R keys, or cut to R
            if len(queue) < reserve_size:
                reserve(reserve_size - len(queue))
            queue = collections.deque(list(queue)[:reserve_size])
        elif op[0] == "next":
            nxt = op[1]
            if not queue:
                reserve(reserve_size)
            key = queue.popleft()
            count += 1
            nxt.own[j], nxt.spare[j] = key, state
            nxt.text[j] = f"key #{count} of the sequence started at {text}"
        elif op[0] == "replace":  # the state control flow (hk.remat, hk.cond, ...) handed back
            found = [keys.get(o.data[j]) if j < len(o.data) else None for o in op[1]]
            if not found or any(f is None for f in found):
                # not derived yet (the inner sequence that made it may be derived later, from
                # the keys this one derived up to here), or never: tried again while others progress
                s.stuck[j] = "control flow handed the sequence a state initcheck did not derive"
                return False
            state, queue = found[0][0], collections.deque(f[0] for f in found[1:])
    s.stuck.pop(j, None)
    return True


def _derive(rec: _Recording, rng, reserve_size: int) -> None:
    """Derive every sequence, slice by slice, until nothing more can be derived."""
    keys = observed.DerivedKeys(rec.key_ops)
    root = derive.haiku_root(rng)
    keys.add(root, "rng")
    progress = True
    while progress:
        progress = False
        for stack in rec.stacks:
            _stack_roots(stack, rec, keys)
        for s in rec.order:
            count = _slices(s)
            for j in range(count or 0):
                if j in s.done or "*" in s.stuck:
                    continue
                try:
                    simulated = _simulate(s, j, keys, reserve_size)
                except Exception as exc:  # noqa: BLE001 - a sequence initcheck cannot follow is not derived
                    s.stuck["*"] = f"initcheck could not follow it ({type(exc).__name__}: {exc})"
                    continue
                if simulated:
                    s.done.add(j)
                    progress = True
    for s in rec.order:  # a sequence the model started at a key of its own: a fixed seed?
        kind, what = s.start
        if kind == "key" and what.data and not s.done and (seed := _fixed_seed(what.data[0])) is not None:
            s.fixed = f"hk.with_rng(PRNGKey({seed})): a fixed key, the same for every rng the model is given"


def _stack_roots(stack: _Stack, rec: _Recording, keys: observed.DerivedKeys) -> None:
    """``hk.layer_stack``: the roots of its layers from the key it drew, once that key is derived."""
    if stack.key is None:
        stack.key = next((n for s, n in rec.nexts[stack.first :] if s is stack.seq), None)
    if stack.key is None:
        return
    for j, key in list(stack.key.own.items()):
        for layer, root in enumerate(derive.haiku_layer_stack_roots(key, stack.count)):
            keys.add(
                root,
                f"layer {layer} of hk.layer_stack({stack.count}) (split(r_{layer}, 3)[0], r_0 = {stack.key.text[j]})",
            )


def record(transformed, inputs, rng, *, kwargs=None, reserve_size: int | None = None) -> list[Parameter]:
    """Run ``transformed.init(rng, *inputs, **kwargs)`` eagerly and return every value it made with
    its derived key(s) and its declared initializer's values on them."""
    rec = _Recording()
    with _watching(rec):
        out = transformed.init(rng, *inputs, **(kwargs or {}))
        jax.effects_barrier()
    _derive(rec, rng, _reserve(reserve_size))
    last = _last_creations(rec)
    return [
        guarded(path, value, collection, functools.partial(_value, path, collection, value, c, path in rec.set_names))
        for collection, path, value, c in _stored(out, last)
    ]


def record_abstract(
    transformed, inputs, rng, *, kwargs=None, reserve_size: int | None = None, other_rng=None, whole: bool = False
) -> list[Parameter]:
    """``transformed.init`` traced under ``jax.jit`` and run with nothing but its keys as live
    computation (no value is made: XLA removes every computation that no observed key needs), every
    value it makes with its derived key(s) and a ``Lazy`` that makes it: slice by slice (layer by
    layer) from its declared initializer, or by the model's own init pruned to it (from ``rng``, or
    from ``other_rng``); with ``whole``, by one jitted init of the whole model, run once per root
    and shared by every value. A state is made as it was created, as the eager run records it."""
    kwargs = dict(kwargs or {})
    root = derive.haiku_root(rng)
    rec = _Recording()
    shapes: list = []

    def observe(r):
        rec.top = _trace_state()
        with _watching(rec):
            out = transformed.init(r, *inputs, **kwargs)
        shape = lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype)
        trees = out if isinstance(out, tuple) else (out, {})  # (in Haiku's order: tree_map would sort them)
        shapes.append(tuple({m: {n: shape(v) for n, v in e.items()} for m, e in t.items()} for t in trees))

    jax.jit(observe)(root)  # returns nothing: only the keys the callbacks read are computed
    jax.effects_barrier()
    _derive(rec, rng, _reserve(reserve_size))
    last = _last_creations(rec)
    created = {key for key, c in last.items() if key[0] == "state" and c.outer}  # made as created, not as left
    stacked = {key for key, c in last.items() if key[0] == "state" and c.stacks and not c.outer}
    own = _own(transformed, inputs, kwargs, {False: root, True: other_rng}, created, whole, stacked)
    values = []
    for collection, path, value, c in _stored(shapes[0], last):
        if c is not None and (collection, path) in created:
            value = jax.ShapeDtypeStruct(np.shape(c.value), c.value.dtype)
        p = guarded(
            path,
            value,
            collection,
            functools.partial(_value, path, collection, value, c, path in rec.set_names, own=own(collection, path)),
        )
        values.append(p if p.lazy is not None else dataclasses.replace(p, lazy=Lazy(None, own(collection, path))))
    return values  # (a value with nothing derived is still made by the model's own init)


def _reserve(reserve_size: int | None) -> int:
    from haiku._src import config  # lazy: Haiku loads only when a Haiku target is used

    return config.get_config().rng_reserve_size if reserve_size is None else reserve_size


def _last_creations(rec: _Recording) -> dict:
    """(collection, name) -> its creation; a name made twice (both branches of ``hk.cond`` at
    init): the last whose keys were seen drawn."""
    last: dict = {}
    for c in rec.created:
        seen = all(n.obs.data or n.obs.unreadable for n in c.nexts)
        if seen or (c.collection, c.name) not in last:
            last[c.collection, c.name] = c
    return last


def _stored(out, last: dict):
    """``(collection, path, value, creation)`` of every value in ``init``'s output."""
    params, state = out if isinstance(out, tuple) else (out, {})
    for collection, tree in (("params", params), ("state", state)):
        for module, entries in tree.items():
            for name, value in entries.items():
                path = f"{module}/{name}"
                yield collection, path, value, last.get((collection, path))


def _own(
    transformed, inputs, kwargs: dict, roots: dict, created: set, whole: bool, stacked: frozenset | set = frozenset()
) -> Callable:
    """``own(collection, path)``: the model's own init of that value, ``(again=False) -> array``,
    from ``roots[again]`` (a ``jax.jit`` of ``init`` returning that value alone, or with ``whole``
    one jitted init of the whole model per root, shared). A state in ``created`` is returned as
    its initializer made it (the model may update it later in the same init); so is one in
    ``stacked`` (made in an ``hk.layer_stack``, which stores each layer's state after one apply of
    the layer): below the top of the trace, an ``hk.set_state`` of it keeps the value it had (in the
    layer's init or apply, where its name is the stored one less the stacks' prefixes)."""
    from haiku._src import base  # lazy: Haiku loads only when a Haiku target is used

    held = {"/".join(parts[i:]) for _, name in stacked if (parts := name.split("/")) for i in range(len(parts))}

    def init(r):
        kept: dict = {}
        top = _trace_state()

        def keep(next_creator, shape, dtype, init, context):
            value = next_creator(shape, dtype, init)
            if ("state", _stored_name(context)) in created:
                kept["state", _stored_name(context)] = value
            return value

        def hold(next_setter, value, context):
            if context.full_name in held and _trace_state() != top:
                bundle, _, name = context.full_name.rpartition("/")
                pair = base.current_frame().state.get(bundle, {}).get(name)
                if pair is not None:  # set before: kept as it was (as made, in a stacked layer)
                    return next_setter(pair.current)
            return next_setter(value)

        with base.custom_creator_unsafe(keep, params=False, state=True), base.state_setter_stack(hold):
            out = transformed.init(r, *inputs, **kwargs)
        params, state = out if isinstance(out, tuple) else (out, {})
        return {"params": params, "state": state}, kept

    def leaf(made, collection: str, path: str):
        tree, kept = made
        if (collection, path) in kept:
            return kept[collection, path]
        module, name = path.rsplit("/", 1)
        return tree[collection][module][name]

    def root(again: bool):
        if again and roots[True] is None:
            raise ValueError("no other root key was given to initialize the model from")
        return derive.haiku_root(roots[again])

    whole_init = jax.jit(init)
    made: dict[bool, Any] = {}

    def own(collection: str, path: str) -> Callable:
        if whole:  # one jitted init of the whole model (per root), shared by every value

            def from_whole(again=False):
                if again not in made:
                    made[again] = whole_init(root(again))
                return leaf(made[again], collection, path)

            return from_whole
        program = jax.jit(lambda r: leaf(init(r), collection, path))
        return lambda again=False: program(root(again))

    return own


def _value(path: str, collection: str, value, c: _Created | None, set_by_model: bool, own=None) -> Parameter:
    """One value the init made, checked against the recording: with its expected value (eager), or
    with ``own`` (the abstract path: the model's own init of it), a ``Lazy`` that makes it."""
    if c is None:
        if set_by_model:
            return Parameter(
                path=path,
                value=value,
                declared=None,
                collection=collection,
                computed=(
                    "first written by hk.set_state during init: a value the model computes (e.g. a moving average "
                    "of its inputs), not an initializer's"
                ),
            )
        return Parameter(
            path=path,
            value=value,
            declared=None,
            collection=collection,
            unaudited="initcheck did not see it being created",
        )
    if collection == "state" and not isinstance(c.value, jax.core.Tracer) and np.shape(c.value) == np.shape(value):
        value = c.value  # the value at creation (the model may update its state during init)
    counts = tuple(s.count for s in c.stacks)
    if c.made and len(c.made) == math.prod(counts) and tuple(np.shape(value)) == counts + c.shape:
        value = np.stack(c.made).reshape(np.shape(value))  # as made in each layer (then updated by its apply)
    law = declared_law(c.init) or (c.seen.law if c.seen is not None and tuple(c.seen.shape) == c.shape else None)
    base = Parameter(
        path=path,
        value=value,
        declared=c.init,
        drawn_by=c.seen.init if c.seen is not None else None,
        collection=collection,
        law=law,
        stacked=tuple(range(len(counts))),
        transform=", ".join(f"hk.layer_stack({n})" for n in counts),
    )
    if tuple(np.shape(value)) != counts + c.shape:
        return dataclasses.replace(
            base,
            stacked=(),
            unaudited=(
                f"its stored shape {np.shape(value)} is not the shape {c.shape} it was made with stacked over "
                f"{list(counts)} layers (a transform initcheck does not model)"
            ),
        )
    slices = math.prod(counts)
    if unreadable := next((n.obs.unreadable for n in c.nexts if n.obs.unreadable), ""):
        return dataclasses.replace(base, unaudited=unreadable)
    if own is not None and all(len(n.obs.data) >= slices for n in c.nexts):
        # the abstract path: a value whose keys are not derived (or not as the rule gives) is still
        # made slice by slice, by its declared initializer on the keys Haiku handed it
        handed = lambda j: _run(c, [n.obs.key(j) for n in c.nexts], c.nexts[-1].obs.key(j) if c.nexts else None)
        base.lazy = Lazy(handed, own)
    if fixed := next((n.seq.fixed for n in c.nexts if n.seq is not None and n.seq.fixed), ""):
        return dataclasses.replace(base, problem=fixed)
    if any(j not in n.own for n in c.nexts for j in range(slices)):
        stuck = next((r for n in c.nexts if n.seq is not None for r in n.seq.stuck.values()), "") or (
            "one started at a key the model made itself (hk.with_rng(key)) or by a transform initcheck does not model"
        )
        return dataclasses.replace(
            base, underived=f"its initializer drew keys from a sequence initcheck could not derive: {stuck}"
        )
    wrong = next(((n, j) for n in c.nexts for j in range(slices) if derive.key_bytes(n.own[j]) != n.obs.data[j]), None)
    if wrong is not None:
        n, j = wrong
        return dataclasses.replace(
            base,
            problem=f"Haiku handed {path}'s initializer a different key than the sequence rule gives ({n.text[j]})",
        )

    def declared(j: int):  # slice j (layer j of the stacks) from the declared initializer on its keys
        return _run(c, [n.own[j] for n in c.nexts], c.nexts[-1].spare[j] if c.nexts else None)

    if own is None:  # eager: made now, laid out as the stored value
        base.expected = np.stack([np.asarray(declared(j)) for j in range(slices)]).reshape(np.shape(value))
    else:  # abstract: made later, slice by slice
        base.lazy = Lazy(declared, own)
    if not c.nexts:
        return dataclasses.replace(base, derivation="no key: a deterministic initializer")
    first = c.nexts[0]
    text = first.text[0] + (f" in layer 0 of {slices}, and alike in each layer" if counts else "")
    if len(c.nexts) > 1:
        text += f", then {len(c.nexts) - 1} more key(s)"
    keys = [first.own[j] for j in range(slices)]
    return dataclasses.replace(base, derivation=text, key=jax.numpy.stack(keys) if counts else keys[0])


def _run(c: _Created, keys: list, spare):
    """``c.init(shape, dtype)`` drawing ``keys`` in order (``spare`` continues the sequence)."""
    import haiku as hk  # lazy: Haiku loads only when a Haiku target is used

    def run():
        if not keys:
            return c.init(c.shape, c.dtype)
        with hk.with_rng((spare, tuple(keys))):
            return c.init(c.shape, c.dtype)

    return hk.transform(run).apply({}, None)


def _forward(target: Model, parameters: list[Parameter], call_args: tuple, call_kwargs: Mapping) -> Forward:
    """``transformed.apply(params[, state], rng, *inputs)``."""
    import haiku as hk  # lazy: Haiku loads only when a Haiku target is used

    split = lambda path: path.rsplit("/", 1)
    tree = nested(parameters, split)
    keys = [(p.collection, p.path) for p in parameters if tracked(p)]
    with_state = isinstance(target.model, hk.TransformedWithState)

    def fn(values, inputs):
        t = replaced(tree, keys, values, split)
        params, state = t.get("params", {}), t.get("state", {})
        if with_state:
            return target.model.apply(params, state, target.rng, *inputs, **call_kwargs)[0]
        return target.model.apply(params, target.rng, *inputs, **call_kwargs)

    values = values_of(parameters, keys)
    return Forward(fn, keys, values, call_args, mesh_of(values))


def _bound(target: Model) -> Model:
    """``target``, or (when its init runs a collective over an axis that only ``pmap`` would bind,
    ``hk.BatchNorm(cross_replica_axis="i")`` in training mode, as Haiku's ImageNet example
    initializes under ``jax.pmap(forward.init, axis_name="i")``) the target whose init runs with
    that axis bound, of size one (``with_bound_axes``): the values are those of one device's init."""
    import haiku as hk  # lazy: Haiku loads only when a Haiku target is used

    model, args, kwargs = target.model, target.args, dict(target.kwargs)

    def probe(names: list[str]):
        init = with_bound_axes(lambda *a, **k: model.init(target.rng, *a, **k), names)
        return jax.eval_shape(lambda: init(*args, **kwargs))

    try:
        names, _ = unbound_axes(probe)
    except Exception:  # noqa: BLE001 - the init's own error is the record's to tell
        return target
    if not names:
        return target
    init = lambda rng, *a, **k: with_bound_axes(lambda *a, **k: model.init(rng, *a, **k), names)(*a, **k)
    kind = hk.TransformedWithState if isinstance(model, hk.TransformedWithState) else hk.Transformed
    return dataclasses.replace(target, model=kind(init, model.apply))


def _collections(out) -> dict[str, Any]:
    """``{"params/module/name": value, "state/...": value}`` of ``init``'s output."""
    params, state = out if isinstance(out, tuple) else (out, {})
    return {**tree_values("params/", params), **tree_values("state/", state)}


class Haiku:
    """Haiku: an ``hk.transform``ed (or ``transform_with_state``) function, ``init(rng, *inputs)``."""

    name, family, reinitializes = "haiku", "haiku", True
    settings: tuple[Setting, ...] = (haiku_laws.RESERVE_SIZE,)

    def recognises(self, model) -> bool:
        hk = sys.modules.get("haiku")
        return hk is not None and isinstance(model, (hk.Transformed, hk.TransformedWithState))

    def refusal(self, model) -> str | None:
        return None

    def describe(self, model) -> str:
        return "haiku.Transformed"

    def record(self, target: Model, settings: Mapping[str, Any]) -> Recording:
        reserve = settings.get(haiku_laws.RESERVE_SIZE.name)
        return Recording(
            record(_bound(target).model, target.args, target.rng, kwargs=dict(target.kwargs), reserve_size=reserve)
        )

    def record_abstract(
        self, target: Model, settings: Mapping[str, Any], other: Any = None, whole: bool = False
    ) -> Recording:
        reserve = settings.get(haiku_laws.RESERVE_SIZE.name)
        return Recording(
            record_abstract(
                _bound(target).model,
                target.args,
                target.rng,
                kwargs=dict(target.kwargs),
                reserve_size=reserve,
                other_rng=other,
                whole=whole,
            )
        )

    def forward(self, target: Model, recording: Recording) -> Forward:
        return _forward(target, recording.parameters, *apply_inputs(target))

    def values(self, target: Model) -> dict[str, Any]:
        return _collections(_bound(target).model.init(target.rng, *target.args, **dict(target.kwargs)))

    def shapes(self, target: Model) -> dict[tuple[str, str], Any]:
        model = _bound(target).model
        init = lambda: model.init(target.rng, *target.args, **dict(target.kwargs))
        flat = _collections(jax.eval_shape(init))
        return {(path.partition("/")[0], path.partition("/")[2]): leaf for path, leaf in flat.items()}

    def key_cause(self) -> str:
        return SAME_KEY

    def ignored_key_cause(self) -> str:
        return IGNORED_KEY


FRAMEWORK = Haiku()
NO_COMPLEX_UNIFORM = "jax.random.uniform has no complex dtypes (ValueError)"
NOTES = {
    "TruncatedNormal": "complex dtypes: not checked (Haiku draws the real and imaginary parts "
    "independently; no law states that promise)",
    "Orthogonal": "complex dtypes: not checked (initcheck has no unitary law yet)",
}


def catalog_entries() -> list[CatalogEntry]:
    """``hk.initializers``: every class in its default configuration (``VarianceScaling`` in each
    mode and distribution), its law read from the one law table (``haiku_laws``)."""
    hi = haiku_laws.initializers()
    real, cplx = real_dtypes(), complex_dtypes()
    low = (haiku_laws.HAIKU_LOW_PRECISION_SAMPLING,)
    items = [  # (label, init, dtypes, refusals, defects)
        ("Constant(0.5)", hi.Constant(0.5), real + cplx, {}, ()),
        ("RandomNormal()", hi.RandomNormal(), real + cplx, {}, low),
        ("RandomUniform()", hi.RandomUniform(), real, dict.fromkeys(cplx, NO_COMPLEX_UNIFORM), low),
        ("TruncatedNormal()", hi.TruncatedNormal(), real, {}, low),
        ("UniformScaling(2.0)", hi.UniformScaling(2.0), real, dict.fromkeys(cplx, NO_COMPLEX_UNIFORM), low),
        ("Orthogonal()", hi.Orthogonal(), wide_dtypes(), dict.fromkeys(("bfloat16", "float16"), NO_16BIT_QR), ()),
        ("Identity()", hi.Identity(), real + cplx, {}, ()),
    ]
    for mode in ("fan_in", "fan_out", "fan_avg"):
        for distribution in laws.DISTRIBUTIONS:
            defects = low + {
                "truncated_normal": (haiku_laws.HAIKU_COMPLEX_TRUNCATED_NORMAL,),
                "uniform": (haiku_laws.HAIKU_COMPLEX_UNIFORM,),
            }.get(distribution, ())
            init = hi.VarianceScaling(1.0, mode, distribution)
            items.append((f"VarianceScaling(1.0, {mode!r}, {distribution!r})", init, real + cplx, {}, defects))
    entries = []
    for label, init, dtypes, refusals, defects in items:
        cls = label.split("(")[0]
        law = haiku_laws.law_of(init)
        if law is None:
            raise RuntimeError(f"haiku.initializers.{label}: haiku_laws.law_of does not know it")
        for reason in dict.fromkeys(refusals.values()):
            law = law.refusing([d for d, r in refusals.items() if r == reason], reason)
        entries.append(
            CatalogEntry(
                f"haiku.initializers.{label}",
                "haiku",
                init,
                law,
                dtypes=dtypes,
                defects=defects,
                configurations=strategies.haiku_initializers(names=[cls]),
                notes=NOTES.get(cls, ""),
            )
        )
    return entries
