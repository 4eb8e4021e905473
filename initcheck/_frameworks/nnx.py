"""Audit a Flax nnx Module class or factory: build it with ``nnx.Rngs`` made from ``rng``, watch every
stream call, every ``*_init`` argument of nnx layers (``kernel_init``, ``bias_init``, ...), every
known initializer called (``_observed``) and every Variable stored on a layer, and derive every key
with initcheck's own rules (``derive``). A stored Variable is made by its layer's ``*_init`` argument for
that attribute, or by the call whose output it is; inside ``nnx.vmap`` the layers are copies, found
by their class and attribute.

The rule (``flax/nnx/rnglib.py``): the n-th call of a stream whose key is ``k`` gives ``fold_in(k, n)``.
``fork()`` starts a stream at a key drawn from its parent; ``split_rngs(splits=L)`` (and
``RngStream.split``) replaces a stream's key by ``split(fold_in(k, n), L)``, one key per slice, each
counting from 0; ``broadcast`` hands every slice the drawn key. Inside ``nnx.vmap``/``nnx.scan`` (and
``nnx.jit``) keys are traced: initcheck reads the concrete state of each call, slice by slice, with
``jax.debug.callback`` and derives every slice's key from the seeds with its own code.

Abstract path (the memory budget, ``record_abstract``): the same watched construction runs under
``jax.jit`` and returns only the random state and a few tiny values, so XLA makes no other value;
the keys each call is handed arrive by debug callbacks, and every value is recorded as a
``jax.ShapeDtypeStruct`` with a ``Lazy`` that makes it when the audit gets to it: by its declared
initializer on its derived key(s), slice by slice, or by the model's own construction under
``jax.jit`` pruned to it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import sys
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
from jax._src.interpreters import batching

from initcheck import laws
from initcheck._entries import CatalogEntry
from initcheck._frameworks import _observed as observed
from initcheck._frameworks import derive, flax_laws, linen
from initcheck._frameworks._declared import declared_law
from initcheck._frameworks._observed import made_by
from initcheck._frameworks._protocol import SAME_KEY, Recording, Setting, qualified_name
from initcheck._frameworks.linen import general_kernel_law
from initcheck._record import Forward, Lazy, Leaves, Model, NoForward, Parameter, guarded, mesh_of

FIXED_SEEDS = 1024  # a key equal to jax.random.key(s) for s below this is a fixed key, not a draw


@dataclasses.dataclass(eq=False)
class _Slice:
    """One concrete call of a stream: the stream's key and count then, and the key it gave."""

    state: bytes
    count: int
    key: bytes
    impl: Any = None  # the PRNG implementation of the keys
    own: Any = None  # initcheck's key for this call (None: its state is not one initcheck derived)
    own_count: int = -1  # initcheck's count of the calls made with this state before it
    text: str = ""  # initcheck's key as an expression, e.g. fold_in(split(fold_in(default, 0), 3)[i], 1)


@dataclasses.dataclass(eq=False)
class _Draw:
    tag: str
    key: Any  # the key returned (a tracer inside transforms)
    purpose: tuple = ()  # ("split", splits), ("fork",), ("broadcast", shape) or ()
    batched: bool = False  # drawn under jax.vmap (nnx.vmap): its initializer ran batched
    slices: list = dataclasses.field(default_factory=list)  # one _Slice per concrete call (per slice)
    unobserved: str = ""  # why its concrete values could not be read


@dataclasses.dataclass(eq=False)
class _Call:
    """An initializer call that made a value: an ``*_init`` argument of a layer (``module``, and the
    attribute ``name`` it makes), or a known initializer seen called (``module`` None)."""

    module: Any
    name: str  # the attribute: the argument's name without "_init" ('' for a seen call)
    init: Callable[..., Any]  # re-runnable: init(key, *args, **kwargs)
    args: tuple
    kwargs: dict
    key: Any
    value: Any  # what it returned, unboxed
    law: laws.Law | None = None  # its law (declared, or read from a known initializer called inside it)
    declared: Callable[..., Any] | str | None = None  # what the model declared, for messages
    drawn_by: Callable[..., Any] | None = None  # the known initializer that drew the value, when seen
    seen_key: list = dataclasses.field(default_factory=list)  # a traced key's raw data, read by a debug callback


@dataclasses.dataclass(eq=False)
class _Assigned:
    """A Variable stored as an attribute of a layer while the model was built."""

    module: Any
    name: str
    variable: Any
    raw: Any


@dataclasses.dataclass(eq=False)
class _Links:
    """What ties the values of a construction under ``jax.jit`` (the abstract path) to the calls
    that made them: each layer's parent and attribute (to tell apart the copies of layers made
    inside ``nnx.vmap``/``nnx.scan`` without their values), and each array a Variable with sharding
    metadata stored in place of the one it was given (``shard_value``'s output and input)."""

    parents: dict = dataclasses.field(default_factory=dict)  # id(module) -> (module, parent, attribute)
    unsharded: dict = dataclasses.field(default_factory=dict)  # id(stored array) -> (stored, given)
    traced: bool = False  # read traced keys (debug callbacks): known initializers' and those split or folded
    known_keys: dict = dataclasses.field(default_factory=dict)  # id(KnownCall) -> its traced key's raw data


class _States:
    """initcheck's own keys for every stream state seen: the seeds' roots, the keys that forks,
    splits and broadcasts start streams at, every key a stream handed out and what the model split
    or folded from those by hand; and how many calls each (stream, state) has made."""

    def __init__(self):
        self.key_ops: list = []
        self.keys = observed.DerivedKeys(self.key_ops)
        self.counts: dict[tuple[str, bytes], int] = {}
        self.add, self.get = self.keys.add, self.keys.get

    def observe(self, tag: str, slices: list[_Slice], batched: tuple[bool, bool] | None) -> None:
        """Derive the keys of concrete calls (the slices of one call under ``nnx.vmap``, computed
        batched as nnx computed them: ``batched`` says whether the state and the count were
        batched) from their states, and count them."""
        entries = [self.get(s.state) for s in slices]
        counts = []
        for s in slices:
            counts.append(self.counts.get((tag, s.state), 0))
            self.counts[tag, s.state] = counts[-1] + 1
        if any(e is None for e in entries):
            return
        states = jax.numpy.stack([e[0] for e in entries])
        ns = jax.numpy.asarray(counts, jax.numpy.uint32)
        if batched:
            axes = tuple(0 if b else None for b in batched)
            own = jax.vmap(derive.nnx_key, in_axes=axes)(
                states if batched[0] else states[0], ns if batched[1] else ns[0]
            )
            own = jax.numpy.broadcast_to(own, (len(slices), *own.shape[1:])) if not any(batched) else own
        else:
            own = [derive.nnx_key(k, n) for k, n in zip(states, ns)]
        for s, e, n, k in zip(slices, entries, counts, own):
            s.own, s.own_count, s.text = k, n, f"fold_in({e[1]}, {n})"
            self.keys.known.setdefault(s.key, (s.own, s.text))


def _layer_classes() -> list[type]:
    """nnx Module classes whose own ``__init__`` takes initializer arguments (``*_init``)."""
    from flax import nnx  # lazy: Flax loads only when a Flax target is used

    found, stack = [], [nnx.Module]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub in found:
                continue
            found.append(sub)
            stack.append(sub)
    out = []
    for cls in found:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        try:
            names = inspect.signature(init).parameters
        except (TypeError, ValueError):
            continue
        if any(p.endswith("_init") for p in names):
            out.append(cls)
    return out


def _bytes(data) -> bytes:
    return np.asarray(data).tobytes()


@contextlib.contextmanager
def _watching(
    calls: list[_Call],
    draws: list[_Draw],
    states: _States,
    assigned: list[_Assigned],
    known: list,
    links: _Links | None = None,
):
    from flax import nnx  # lazy: Flax loads only when a Flax target is used
    from flax.core import spmd  # lazy: Flax loads only when a Flax target is used
    from flax.nnx import pytreelib, rnglib  # lazy: Flax loads only when a Flax target is used

    purpose: list[tuple] = []
    links = links if links is not None else _Links()

    def spy_on(module, name, init):
        init = getattr(init, "__initcheck_spied__", init)  # a layer passing its init to a sub-layer

        @functools.wraps(init)
        def spy(key, *args, **kwargs):
            start = len(known)
            seen_key = _read_traced(key)
            value = init(key, *args, **kwargs)
            law, drawn_by = declared_law(init), init
            if law is None and (seen := made_by(_raw(value), known[start:])) is not None:
                law, drawn_by = seen.law, seen.init  # a wrapper around a known initializer, which returned its output
            calls.append(_Call(module, name, init, args, kwargs, key, _raw(value), law, init, drawn_by, seen_key))
            return value

        spy.__initcheck_spied__ = init
        return spy

    def watch(cls):
        original = cls.__dict__["__init__"]
        signature = inspect.signature(original)

        @functools.wraps(original)
        def init(self, *args, **kwargs):
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            for name, value in bound.arguments.items():
                if name.endswith("_init") and callable(value):
                    bound.arguments[name] = spy_on(self, name[: -len("_init")], value)
            return original(*bound.args, **bound.kwargs)

        return original, init

    stream_call = nnx.RngStream.__call__
    setattr_original = pytreelib.Pytree._setattr
    shard_original = spmd.shard_value

    def watched_setattr(self, name, value):
        if isinstance(value, nnx.Variable):
            assigned.append(_Assigned(self, name, value, value.get_raw_value()))
        elif isinstance(value, nnx.Module):
            links.parents[id(value)] = (value, self, name)
        return setattr_original(self, name, value)

    def watched_shard(value, *args, **kwargs):
        out = shard_original(value, *args, **kwargs)
        if out is not value:
            links.unsharded[id(out)] = (out, value)
        return out

    def observe(draw: _Draw, impl, state, count, key, batched=None):
        slices = [_Slice(_bytes(st), int(c), _bytes(k), impl) for st, c, k in zip(state, count, key)]
        states.observe(draw.tag, slices, batched)
        draw.slices.extend(slices)
        for s in slices:
            _register(draw, s, states)

    def one(draw, impl, state, count, key):  # a debug callback: one slice at a time
        observe(draw, impl, [state], [count], [key])

    def watched_call(self):
        state, count = self.key[...], self.count[...]
        key = stream_call(self)
        impl = jax.random.key_impl(state)
        draw = _Draw(self.tag, key, purpose[-1] if purpose else (), isinstance(key, batching.BatchTracer))
        draws.append(draw)
        batch = _batched_values(jax.random.key_data(state), count, jax.random.key_data(key))
        if np.shape(count) != ():
            draw.unobserved = "a call of a stream that was split but is used outside the transform that maps it"
        elif batch is not None:  # eager nnx.vmap: the slices' values are at hand
            values, flags = batch
            observe(draw, impl, *values, batched=flags[:2])
        elif isinstance(key, jax.core.Tracer):
            try:
                jax.debug.callback(
                    functools.partial(one, draw, impl),
                    jax.random.key_data(state),
                    count,
                    jax.random.key_data(key),
                    ordered=True,
                )
            except Exception as exc:  # noqa: BLE001 - a transform that forbids callbacks
                draw.unobserved = f"its keys are traced and cannot be read ({type(exc).__name__})"
        else:
            observe(draw, impl, [jax.random.key_data(state)], [count], [jax.random.key_data(key)])
        return key

    def tagged(fn, label):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            purpose.append(label(*args, **kwargs))
            try:
                return fn(*args, **kwargs)
            finally:
                purpose.pop()

        return wrapper

    def splits_of(*args, **kwargs):
        return ("split", kwargs.get("splits", args[1] if len(args) > 1 else None))

    patches = {
        (pytreelib.Pytree, "_setattr"): watched_setattr,
        (spmd, "shard_value"): watched_shard,
        (nnx.RngStream, "__call__"): watched_call,
        (nnx.RngStream, "split"): tagged(nnx.RngStream.split, lambda self, k: ("split", k)),
        (nnx.RngStream, "fork"): tagged(
            nnx.RngStream.fork, lambda self, *, split=None: ("split", split) if split is not None else ("fork",)
        ),
        (nnx.RngStream, "broadcast"): tagged(nnx.RngStream.broadcast, lambda self, k: ("broadcast", k)),
        (rnglib, "_graph_updates_split_rngs"): tagged(rnglib._graph_updates_split_rngs, splits_of),
        (rnglib, "_simple_split_rngs"): tagged(rnglib._simple_split_rngs, splits_of),
    }
    originals = {target: getattr(*target) if target[1] != "__call__" else stream_call for target in patches}
    originals[pytreelib.Pytree, "_setattr"] = setattr_original
    layers = {cls: watch(cls) for cls in _layer_classes()}
    for (owner, attr), fn in patches.items():
        setattr(owner, attr, fn)
    for cls, (_, init) in layers.items():
        setattr(cls, "__init__", init)  # noqa: B010 - a class's __init__, swapped while it is watched
    try:
        with observed.watching(known, states.key_ops):
            if links.traced:
                _follow_traced_keys(states.key_ops, known, links)
            yield
    finally:
        for (owner, attr), fn in originals.items():
            setattr(owner, attr, fn)
        for cls, (original, _) in layers.items():
            setattr(cls, "__init__", original)  # noqa: B010


def _read_traced(key) -> list:
    """The raw data of a traced key, filled in when the traced program runs (a debug callback):
    under ``jax.jit`` a fixed key such as ``jax.random.key(42)`` is a tracer too."""
    seen: list = []
    if isinstance(key, jax.core.Tracer) and hasattr(key, "dtype"):
        typed = jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
        with contextlib.suppress(Exception):  # a transform that forbids callbacks: the key stays unread
            jax.debug.callback(
                lambda data: seen.append(_bytes(data)), jax.random.key_data(key) if typed else key, ordered=True
            )
    return seen


def _follow_traced_keys(key_ops: list, known: list, links: _Links) -> None:
    """Around the profile hook of ``observed.watching`` (which reads the keys of known initializers
    and the splits and fold-ins of concrete keys), one that also reads traced keys (a model built
    under ``jax.jit``): a known initializer's key (a fixed key is found by its value) and the
    splits and fold-ins a model makes by hand of ``rngs.params()``; their raw data arrive by debug
    callbacks, in program order."""
    inner = sys.getprofile()
    if inner is None:
        return  # another profiler: nothing is recorded rather than displacing it
    codes = {jax.random.split.__code__: "split", jax.random.fold_in.__code__: "fold_in"}
    busy: list[bool] = []

    def hook(frame, event, arg):
        if busy:
            return
        start = len(known)
        inner(frame, event, arg)
        kind = codes.get(frame.f_code) if event == "return" else None
        if kind is None and len(known) == start:
            return
        busy.append(True)
        try:
            for call in known[start:]:
                links.known_keys[id(call)] = _read_traced(call.key)
            if kind is not None:
                observed.record_traced_key_op(key_ops, kind, frame.f_locals, arg)
        except Exception:  # noqa: BLE001 - an op initcheck cannot read is not followed
            pass
        finally:
            busy.pop()

    sys.setprofile(hook)


def _batched_values(*tracers):
    """The concrete per-slice values of ``BatchTracer``s of an eager ``jax.vmap`` (slices first),
    broadcast where one is not batched; None when any is not such a tracer or is nested deeper."""

    if not any(isinstance(t, batching.BatchTracer) for t in tracers):
        return None
    out, size = [], None
    for t in tracers:
        if isinstance(t, batching.BatchTracer):
            if isinstance(t.val, jax.core.Tracer) or not isinstance(t.batch_dim, int):
                return None
            values = np.moveaxis(np.asarray(t.val), t.batch_dim, 0)
            size = values.shape[0]
        elif isinstance(t, jax.core.Tracer):
            return None
        else:
            values = None
        out.append((values, t))
    values = [v if v is not None else np.broadcast_to(np.asarray(t), (size, *np.shape(t))) for v, t in out]
    return values, tuple(v is not None for v, _ in out)


def _register(draw: _Draw, s: _Slice, states: _States) -> None:
    """The stream states a fork, split or broadcast call starts, with initcheck's keys for them."""
    if not draw.purpose or s.own is None:
        return
    kind, shape = draw.purpose[0], draw.purpose[1] if len(draw.purpose) > 1 else None
    actual = _key(s.key, s.impl)
    own = s.own
    if kind == "split" and shape is not None:
        flat = lambda k: derive.flat_keys(jax.random.split(k, shape))
        for a, o in zip(flat(actual), flat(own)):
            states.add(o, f"split({s.text}, {shape})[i]", actual=a)


def _key(data: bytes, impl):
    """The typed key whose raw data is ``data``."""
    return jax.random.wrap_key_data(np.frombuffer(data, np.uint32), impl=impl)


def _seeds(rng) -> dict:
    return dict(rng) if isinstance(rng, Mapping) else {"default": rng}


def _check_factory(factory) -> None:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return  # no signature to read (a builtin): let the call speak
    if "rngs" not in parameters and not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        raise TypeError(
            f"model={getattr(factory, '__qualname__', factory)!r} takes no rngs= argument; an nnx "
            "model is audited as a Module class or a factory called as model(*inputs, rngs=...)"
        )


def record(factory, inputs, rng, kwargs=None) -> tuple[Any, list[Parameter]]:
    """Build ``factory(*inputs, **kwargs, rngs=nnx.Rngs(...))``; return the model and every value it holds."""
    from flax import nnx  # lazy: Flax loads only when a Flax target is used

    _check_factory(factory)
    rngs = nnx.Rngs(**_seeds(rng))
    seen = _Seen.started(rng, rngs)
    with seen.watching():
        model = factory(*inputs, **(kwargs or {}), rngs=rngs)
        jax.effects_barrier()
    _check_module(factory, model)
    return model, seen.values(model)


def record_abstract(factory, inputs, rng, kwargs=None, *, other_rng=None, whole: bool = False):
    """The construction of ``factory(*inputs, **kwargs, rngs=nnx.Rngs(...))`` watched as ``record``
    watches it, but run under ``jax.jit`` returning only the random state (streams' keys and
    counts) and values of at most ``_READ`` elements: XLA drops the computation of every other
    value, and the keys each stream call hands out arrive by debug callbacks. Returns an abstract
    model (``jax.ShapeDtypeStruct`` values, random state in place) and every value it holds, each
    (random state aside) a ShapeDtypeStruct with a ``Lazy`` that makes it: slice by slice from its
    declared initializer on its derived key(s), or whole by the model's own construction pruned to
    it under ``jax.jit`` (from ``rng``, or from ``other_rng``); with ``whole``, by one jitted
    construction of the whole model, run once per root and shared by every value."""
    from flax import nnx  # lazy: Flax loads only when a Flax target is used

    _check_factory(factory)
    seeds = _seeds(rng)
    rngs = nnx.Rngs(**seeds)
    roots = {tag: rngs[tag].key[...] for tag in seeds}  # the keys nnx.Rngs(**seeds) starts at
    seen = _Seen.started(rng, rngs, traced=True)
    built: dict[str, Any] = {}

    def construct(keys):
        model = factory(*inputs, **(kwargs or {}), rngs=nnx.Rngs(**keys))
        _check_module(factory, model)
        graphdef, state = nnx.split(model)
        built.update(model=model, graphdef=graphdef, state=state)
        return {name: raw for name, (node, raw) in _named(model).items() if _read(node, raw)}

    with seen.watching():
        read = jax.jit(construct)(roots)
        jax.effects_barrier()
    model = built["model"]  # its arrays are the construction's tracers: only their shapes are used
    random = {name for name, (node, _) in _named(model).items() if isinstance(node, nnx.RngState) and name in read}
    make = lambda r: {
        name: raw for name, (_, raw) in _named(factory(*inputs, **(kwargs or {}), rngs=nnx.Rngs(**r))).items()
    }
    other = _seeds(other_rng) if other_rng is not None else None
    whole_made: dict[bool, Any] = {}

    def own(name: str):
        if whole:  # one jitted construction of the whole model (per root), shared by every value

            def from_whole(again=False):
                if again not in whole_made:
                    whole_made[again] = jax.jit(functools.partial(make, other if again else seeds))()
                return whole_made[again][name]

            return from_whole
        program = lambda r: jax.jit(lambda: make(r)[name])()
        return lambda again=False: program(other if again else seeds)

    parameters = seen.values(model, _Abstract(read, own))
    parameters = [  # a value with nothing derived is still made by the model's own construction
        dataclasses.replace(p, lazy=Lazy(None, own(p.path)))
        if p.lazy is None and isinstance(p.value, jax.ShapeDtypeStruct)
        else p
        for p in parameters
    ]
    state = jax.tree_util.tree_map_with_path(  # random state in place: the forward pass draws from it
        lambda path, leaf: read[name] if (name := _path(path)) in random else _abstract(leaf), built["state"]
    )
    return nnx.merge(built["graphdef"], state), parameters


_READ = 16  # values of at most this many elements are returned by the abstract path's construction


def _abstract(x):
    return jax.ShapeDtypeStruct(np.shape(x), x.dtype) if hasattr(x, "dtype") else x


def _read(node, raw) -> bool:
    """Whether the abstract path reads this value at record time: random state (its derivation is
    checked on its value) and values of at most ``_READ`` elements (e.g. a constant a layer's law
    names)."""
    from flax import nnx  # lazy: Flax loads only when a Flax target is used

    return hasattr(raw, "shape") and (isinstance(node, nnx.RngState) or int(np.prod(np.shape(raw))) <= _READ)


def _named(model) -> dict[str, tuple[Any, Any]]:
    """``{"a/b": (Variable, raw value)}`` of a module, named as ``record`` names its values."""
    from flax import nnx  # lazy: Flax loads only when a Flax target is used

    return {
        "/".join(str(p) for p in path): (node, node.get_raw_value())
        for path, node in nnx.iter_graph(model)
        if isinstance(node, nnx.Variable)
    }


def _check_module(factory, model) -> None:
    from flax import nnx  # lazy: Flax loads only when a Flax target is used

    if not isinstance(model, nnx.Module):
        raise TypeError(
            f"model: {factory!r} returned {type(model).__name__}, not an nnx.Module; pass an nnx "
            "Module class or a factory that takes rngs= and returns one"
        )


@dataclasses.dataclass
class _Abstract:
    """The abstract path: the values its construction returned (``_read``), by name, and the
    model's own construction pruned to one value (``own(name)(again=False)``)."""

    read: Mapping[str, Any]
    own: Callable[[str], Callable[..., Any]]


@dataclasses.dataclass(eq=False)
class _Seen:
    """Everything one watched construction saw, and initcheck's keys for it."""

    states: _States
    links: _Links
    calls: list[_Call] = dataclasses.field(default_factory=list)
    draws: list[_Draw] = dataclasses.field(default_factory=list)
    assigned: list[_Assigned] = dataclasses.field(default_factory=list)
    known: list = dataclasses.field(default_factory=list)

    @classmethod
    def started(cls, rng, rngs, traced: bool = False) -> _Seen:
        """Before a construction from ``nnx.Rngs(**_seeds(rng))`` (``rngs``): its streams' roots."""
        states = _States()
        for tag, seed in _seeds(rng).items():
            states.add(derive.nnx_root(seed), tag, actual=rngs[tag].key[...])
        return cls(states, _Links(traced=traced))

    def watching(self):
        return _watching(self.calls, self.draws, self.states, self.assigned, self.known, self.links)

    def values(self, model, abstract: _Abstract | None = None) -> list[Parameter]:
        return _values(model, _makers(self.assigned, self.calls, self.known, self.links), self, abstract)


def _makers(
    assigned: list[_Assigned], calls: list[_Call], known: list, links: _Links
) -> list[tuple[_Assigned, _Call | None]]:
    """Each stored Variable with the call that made it: the ``*_init`` argument of its layer for
    that attribute, else the call whose output is its value (a sub-layer's, or a known initializer
    called directly, e.g. ``nnx.Param(initializers.constant(0.0)(rngs.params(), shape))``; a
    Variable with sharding metadata stores a resharded copy of it, followed back to the output)."""
    out, used = [], set()
    for a in assigned:
        given = links.unsharded.get(id(a.raw), (None, a.raw))[1]
        call = next((c for c in reversed(calls) if c.module is a.module and c.name == a.name), None) or next(
            (c for c in reversed(calls) if c.value is a.raw or c.value is given), None
        )
        if call is None:
            seen = (
                made_by(a.raw, known)
                or made_by(given, known)
                or (_same_value(a.raw, [k for k in known if id(k) not in used]) if _resharded(a.variable) else None)
            )
            if seen is not None:
                used.add(id(seen))
                call = _Call(
                    None,
                    "",
                    seen.init,
                    (seen.shape, seen.dtype),
                    {},
                    seen.key,
                    seen.output,
                    seen.law,
                    seen.name,
                    seen.init,
                    links.known_keys.get(id(seen), []),
                )
        out.append((a, call))
    return out


def _resharded(variable) -> bool:
    """A Variable with sharding metadata stores a copy of the array it was given (eager sharding)."""
    metadata = variable.get_metadata() if hasattr(variable, "get_metadata") else {}
    return any(metadata.get(k) for k in ("sharding", "out_sharding", "sharding_names"))


def _same_value(raw, known: list):
    """The first known call whose concrete output equals ``raw`` bit for bit, when ``raw`` is a
    copy of it (a Variable with sharding metadata stores a resharded copy of its value); among
    several such calls only if they promise the same law (e.g. two zero biases)."""
    if (
        isinstance(raw, jax.core.Tracer)
        or not hasattr(raw, "shape")
        or jax.dtypes.issubdtype(raw.dtype, jax.dtypes.prng_key)
    ):
        return None
    data = np.asarray(raw)
    same = [
        k
        for k in known
        if not isinstance(k.output, jax.core.Tracer)
        and np.shape(k.output) == data.shape
        and np.asarray(k.output).dtype == data.dtype
        and np.asarray(k.output).tobytes() == data.tobytes()
    ]
    if same and all(k.law == same[0].law for k in same):
        return same[0]
    return None


def _values(model, makers: list[tuple[_Assigned, _Call | None]], seen: _Seen, abstract: _Abstract | None):
    """Every Variable of ``model`` as a Parameter (on the abstract path, ``model``'s arrays are the
    tracers of its jitted construction: a ShapeDtypeStruct each, random state read from
    ``abstract.read``)."""
    from flax import nnx  # lazy: Flax loads only when a Flax target is used

    nodes = dict(nnx.iter_graph(model))
    in_graph = {id(n) for n in nodes.values()}
    by_variable = {id(a.variable): (a, call) for a, call in makers}
    orphans = [(a, call) for a, call in makers if id(a.module) not in in_graph]  # copies inside transforms
    names = {path: "/".join(str(p) for p in path) for path, node in nodes.items() if isinstance(node, nnx.Variable)}
    if abstract is None:
        values = {name: nodes[path].get_raw_value() for path, name in names.items()}
    else:
        values = {
            name: abstract.read[name]
            if name in abstract.read and isinstance(nodes[path], nnx.RngState)
            else _abstract(nodes[path].get_raw_value())
            for path, name in names.items()
        }
    read = (lambda name: values[name]) if abstract is None else (lambda name: abstract.read.get(name, values[name]))
    out = []
    for path, name in names.items():
        node = nodes[path]
        owner = nodes.get(tuple(path[:-1]))
        found = by_variable.get(id(node))
        if found is None and not isinstance(node, nnx.RngState):  # random state is derived on its own
            try:
                found = _made_inside_transform(values[name], owner, path, orphans, seen, abstract is not None)
            except Exception:  # noqa: BLE001 - an unmatched value is named as such below
                found = None
            if found is not None:
                orphans.remove(found)
        call = found[1] if found is not None else None
        out.append(
            guarded(
                name,
                values[name],
                type(node).__name__,
                functools.partial(_value, name, values[name], node, owner, call, seen, read, abstract),
            )
        )
    return out


def _made_inside_transform(stored, owner, path: tuple, orphans: list, seen: _Seen, abstract: bool):
    """The (assignment, call) of a value made inside ``nnx.vmap``/``nnx.scan``: the layers there are
    copies, so it is found by its layer's class and attribute and where that layer sits under the
    one the transform returned (its parents' attributes), and among several left, by the value the
    initializer gives on the keys nnx actually handed over (identification only; the derivation
    is checked against initcheck's own keys; not on the abstract path, where the last is taken)."""
    name = str(path[-1])
    candidates = [(a, c) for a, c in orphans if a.name == name and type(a.module) is type(owner)]
    placed = [(a, c) for a, c in candidates if _placed(a, path, seen.links)]
    candidates = placed or candidates
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    if abstract:  # several traces of one layer (the same place under the transform): the last made it
        same_place = placed and len({_chain(a, seen.links) for a, _ in placed}) == 1
        return candidates[-1] if same_place else None
    stored = np.asarray(stored)
    for a, call in candidates:
        draw = _draw_of(call, seen.draws) if call is not None else None
        if draw is None or not draw.slices:
            continue
        made = list(_run(call, [_key(s.key, s.impl) for s in draw.slices], draw.batched))
        if sorted(m.tobytes() for m in made) == sorted(_slices_bytes(stored, made[0].size, len(made))):
            return a, call
    return None


def _chain(a: _Assigned, links: _Links) -> tuple[str, ...]:
    """The attributes from the outermost layer that holds ``a``'s layer down to ``a``."""
    names, module, hops = [a.name], a.module, 0
    while id(module) in links.parents and hops < 64:
        _, module, attribute = links.parents[id(module)]
        names.append(attribute)
        hops += 1
    return tuple(reversed(names))


def _placed(a: _Assigned, path: tuple, links: _Links) -> bool:
    """Whether the stored value at ``path`` sits where ``a`` was assigned, under its parents."""
    chain = _chain(a, links)
    return len(chain) > 1 and tuple(str(p) for p in path[-len(chain) :]) == chain


def _slices_bytes(stored: np.ndarray, size: int, count: int) -> list[bytes]:
    """The bytes of ``count`` slices of ``size`` elements, whichever axis holds them."""
    for axis in range(stored.ndim):
        if stored.shape[axis] == count and stored.size == count * size:
            return [np.take(stored, i, axis).tobytes() for i in range(count)]
    return [stored.tobytes()] if count == 1 else []


def _value(
    name: str, value, variable, owner, call: _Call | None, seen: _Seen, read, abstract: _Abstract | None
) -> Parameter:
    """One Variable as a Parameter; ``read(name)``: a value at hand (on the abstract path, random
    state and small values only)."""
    from flax import nnx  # lazy: Flax loads only when a Flax target is used

    collection = type(variable).__name__
    if isinstance(variable, nnx.RngKey):
        return _rng_key(name, value, variable.tag, seen.states)
    if isinstance(variable, nnx.RngCount):
        return _rng_count(name, value, owner, read(name.rsplit("/", 1)[0] + "/key"), seen.states)
    if call is None:
        return _from_array(name, value, collection, variable, owner, read(name))
    return _initialized(name, value, collection, owner, call, seen, abstract)


def _from_array(name, value, collection, variable, owner, concrete) -> Parameter:
    """A Variable built from an array, not by an ``*_init`` argument: known when its layer documents
    it (BatchNorm's statistics) or its metadata declares it (``initcheck_law=<law>``). ``concrete``:
    its value where it is at hand (on the abstract path, only a small one)."""
    metadata: dict[str, Any] = getattr(variable, "get_metadata", dict)()
    law = metadata.get("initcheck_law") or _known_layer_law(owner, name.rsplit("/", 1)[-1], concrete)
    base = Parameter(path=name, value=value, declared=None, collection=collection, law=law)
    if law is None:
        return dataclasses.replace(
            base,
            unaudited=(
                "created from an array, not by an initializer argument (*_init) of an nnx layer, so initcheck cannot "
                "know its initializer or key; pass an initializer, or give the Variable metadata initcheck_law=<law> "
                "for a deterministic value"
            ),
        )
    if law.random:
        return dataclasses.replace(base, underived="created from an array: initcheck cannot derive its key")
    return dataclasses.replace(base, derivation="no key: a deterministic value (structure checks it)")


def _known_layer_law(owner, attribute: str, concrete):
    """Values nnx layers make from arrays, with their documented law (``concrete``: the value)."""
    from flax import nnx  # lazy: Flax loads only when a Flax target is used

    if isinstance(owner, nnx.BatchNorm) and attribute in ("mean", "var"):
        return laws.Constant(0.0 if attribute == "mean" else 1.0)
    if isinstance(owner, nnx.PReLU) and attribute == "negative_slope":
        return laws.Constant(float(np.asarray(concrete).reshape(-1)[0]))  # its constructor's argument
    if isinstance(owner, nnx.MultiHeadAttention) and attribute in ("cached_key", "cached_value", "cache_index"):
        return laws.Constant(0.0)
    return None


def _rng_key(name, value, tag, states: _States) -> Parameter:
    """Random state: a stream's key (e.g. a Dropout's forked stream), slice by slice."""
    data = np.asarray(jax.random.key_data(value))
    keys = jax.numpy.reshape(value, (-1,))
    own = [states.get(derive.key_bytes(k)) for k in keys]
    base = Parameter(path=name, value=data, declared=None, collection="RngKey", is_key=True)
    if any(o is None for o in own):
        return dataclasses.replace(
            base, underived=f"a key of stream {tag!r} that initcheck did not see a fork, split or seed start"
        )
    expected = np.asarray(jax.random.key_data(jax.numpy.stack([o[0] for o in own]))).reshape(data.shape)
    return dataclasses.replace(
        base, expected=expected, key=None, derivation=f"the key {own[0][1]} that starts stream {tag!r}"
    )


def _rng_count(name, value, owner, key, states: _States) -> Parameter:
    """Random state: a stream's count, which must be the number of calls initcheck saw (``key``:
    the stream's key now)."""
    counts = np.asarray(value)
    stream = owner
    keys = jax.numpy.reshape(key, (-1,))
    seen = [states.counts.get((stream.tag, derive.key_bytes(k))) for k in keys]
    base = Parameter(path=name, value=counts, declared=None, collection="RngCount", is_key=True)
    if any(s is None for s in seen):
        return dataclasses.replace(
            base,
            expected=counts * 0,
            derivation="a stream that made no call yet",
            underived="" if not np.any(counts) else "a stream initcheck did not see",
        )
    return dataclasses.replace(
        base,
        expected=np.asarray(seen, counts.dtype).reshape(counts.shape),
        derivation=f"the number of calls initcheck saw of stream {stream.tag!r}",
    )


def _raw(value):
    """An initializer's array: nnx's metadata wrappers return it boxed (``VariableMetadata``)."""
    return getattr(value, "raw_value", value)


def _run(call: _Call, keys: list, batched: bool) -> np.ndarray:
    """``call``'s initializer on each key, stacked: under ``jax.vmap`` when nnx ran it batched
    (some PRNG implementations draw other bits batched than one key at a time)."""

    def one(key):
        return _raw(call.init(key, *call.args, **call.kwargs))

    if batched:
        return np.asarray(jax.vmap(one)(jax.numpy.stack(keys)))
    return np.stack([np.asarray(one(k)) for k in keys])


def _run_one(call: _Call, batched: bool) -> Callable[[Any], Any]:
    """``_run`` of one key, on the device, without a copy of what the initializer made (under
    ``jax.vmap`` of one key, jitted once, when nnx ran it batched)."""

    def one(key):
        return _raw(call.init(key, *call.args, **call.kwargs))

    return jax.jit(lambda k: jax.vmap(one)(k[None])[0]) if batched else one


def _what(call: _Call) -> str:
    """The initializer call in words: ``kernel_init`` of its layer, or the known initializer."""
    return f"{call.name}_init" if call.name else str(call.declared)


def _draw_of(call: _Call, draws: list[_Draw]) -> _Draw | None:
    return next((d for d in reversed(draws) if d.key is call.key), None)


def _fixed_seed(call: _Call) -> int | None:
    """s when ``call``'s key is ``jax.random.key(s)`` (or ``PRNGKey(s)``) for a small s: a fixed key
    (a traced key by the raw data its debug callback read)."""
    if isinstance(call.key, jax.core.Tracer):
        if not call.seen_key:
            return None
        target = call.seen_key[0]
    else:
        target = derive.key_bytes(call.key)
    seeds = np.arange(FIXED_SEEDS, dtype=np.uint32)
    made = np.asarray(jax.random.key_data(jax.vmap(jax.random.key)(seeds)))
    hit = [int(s) for s, row in zip(seeds, made) if row.tobytes() == target]
    return hit[0] if hit else None


def _layer_law(owner, call: _Call, slice_shape) -> tuple[laws.Law | None, bool]:
    """The law of a value made by ``call`` (laid out as ``slice_shape``), and whether the law is on
    the stored layout (True) or on the shape the initializer drew (False)."""
    from flax import nnx  # lazy: Flax loads only when a Flax target is used

    base = call.law
    if isinstance(owner, nnx.LinearGeneral) and call.name == "kernel":
        law, flat = general_kernel_law(base, slice_shape, len(owner.batch_axis), len(owner.out_features))
        return law, flat is None
    return base, False


def _initialized(name, value, collection, owner, call: _Call, seen: _Seen, abstract: _Abstract | None) -> Parameter:
    """A value made by ``call``, with its derived key(s) and what its declared initializer gives on
    them: the expected value, or, on the abstract path, a ``Lazy`` that makes it slice by slice."""
    law_base = Parameter(path=name, value=value, declared=call.declared, drawn_by=call.drawn_by, collection=collection)
    draw = _draw_of(call, seen.draws)
    drawn_shape = tuple(np.shape(_raw(call.value)))
    if draw is None:
        seed = _fixed_seed(call)
        if seed is not None:
            return dataclasses.replace(
                law_base,
                law=call.law,
                problem=(
                    f"{_what(call)} was handed jax.random.key({seed}), a fixed key, not a draw of the model's "
                    "nnx.Rngs: every model built with this class gets the same value"
                ),
            )
        return dataclasses.replace(
            law_base,
            law=call.law,
            underived=(
                f"the key passed to {_what(call)} is not a call of a stream of the model's nnx.Rngs (derived from "
                "one by the layer?)"
            ),
        )
    if draw.unobserved:
        return dataclasses.replace(law_base, law=call.law, unaudited=draw.unobserved)
    slices = draw.slices
    stacked = _stacked_axes(np.shape(value), drawn_shape, len(slices))
    if stacked is None:
        return dataclasses.replace(
            law_base,
            law=call.law,
            unaudited=(
                f"its stored shape {np.shape(value)} does not stack {len(slices)} calls of {_what(call)} of shape "
                f"{drawn_shape} along one axis (a transform initcheck does not model)"
            ),
        )
    slice_shape = tuple(s for i, s in enumerate(np.shape(value)) if i not in stacked)
    law, on_layout = _layer_law(owner, call, slice_shape)
    draw_shape = None if on_layout or drawn_shape == slice_shape else drawn_shape
    missing = [s for s in slices if s.own is None]
    base = dataclasses.replace(
        law_base,
        law=law,
        stacked=stacked,
        draw_shape=draw_shape,
        transform=_transform_text(draw, np.shape(value)[stacked[0]] if stacked else 1),
    )
    if missing:
        return dataclasses.replace(
            base,
            underived=(
                f"{len(missing)} of {len(slices)} calls came from a stream state initcheck did not see started "
                "(a stream split or forked in a way initcheck does not model)"
            ),
        )
    wrong = next((s for s in slices if s.own_count != s.count), None)
    if wrong is not None:
        return dataclasses.replace(
            base,
            problem=(
                f"nnx handed {_what(call)} the key of call #{wrong.count} of its stream where initcheck counts call "
                f"#{wrong.own_count}"
                + (
                    ": the stream's count went back (an Rngs copied with nnx.clone, or a stream restored), so the "
                    "values made after it repeat earlier keys"
                    if wrong.count < wrong.own_count
                    else ""
                )
            ),
        )
    if any(derive.key_bytes(s.own) != s.key for s in slices):
        return dataclasses.replace(base, problem=f"nnx handed {_what(call)} a different key than the nnx rule gives")
    own_keys = [s.own for s in slices]
    batched = draw.batched and len(slices) > 1
    copies = np.shape(value)[stacked[0]] if stacked else 1
    key_of = lambda i: own_keys[i if len(slices) == copies else 0]  # slice i's key (one key for all: the first)
    first = slices[0]
    where = f"call #{first.own_count} of {'each slice' if stacked else 'its'} stream {draw.tag!r}"
    base = dataclasses.replace(
        base,
        key=jax.numpy.stack([key_of(i) for i in range(copies)]) if stacked else own_keys[0],
        derivation=f"{first.text} ({where})",
    )
    if abstract is not None:  # slice i: the initializer on slice i's key
        make = _run_one(call, batched)
        return dataclasses.replace(base, lazy=Lazy(lambda i: make(key_of(i)), abstract.own(name)))
    expected = _run(call, own_keys, batched)
    expected = np.broadcast_to(expected, (copies, *expected.shape[1:])) if len(slices) < copies else expected
    expected = expected.reshape((copies, *slice_shape))
    if stacked:
        expected = np.moveaxis(expected, 0, stacked[0])
    else:
        expected = expected[0]
    return dataclasses.replace(base, expected=expected)


def _transform_text(draw: _Draw, copies: int) -> str:
    if copies == 1:
        return ""
    name = "nnx.vmap" if draw.batched else "an nnx transform"
    return f"{name} over {copies} slices" + (" with one key for all" if len(draw.slices) < copies else "")


def _stacked_axes(stored, drawn, count: int) -> tuple[int, ...] | None:
    """The axis of ``stored`` that holds ``count`` slices of ``drawn`` elements each (() for one call;
    one call stored on several slices is one key handed to every slice, e.g. an unsplit stream
    under ``nnx.vmap``)."""
    size, total = int(np.prod(drawn)), int(np.prod(stored))
    if count == 1 and total == size:
        return ()
    for axis in range(len(stored)):
        if total == stored[axis] * size and (stored[axis] == count or count == 1):
            return (axis,)
    return None


def _path(path) -> str:
    names = [getattr(k, "key", getattr(k, "idx", getattr(k, "name", k))) for k in path]
    if names and names[-1] == "value":
        names = names[:-1]
    return "/".join(str(n) for n in names)


def _forward(built, parameters: list[Parameter], call_args: tuple | None, call_kwargs: Mapping) -> Forward:
    """The built module, ``nnx.merge``d with the values, called on ``call_args``."""
    from flax import nnx  # lazy: Flax loads only when a Flax target is used

    if call_args is None:
        raise NoForward(
            "an nnx model's inputs are its constructor's; pass the forward pass's inputs as call_args=(x,) "
            "(initcheck.audit(..., call_args=...) or initcheck.Model(..., call_args=...))"
        )
    graphdef, state = nnx.split(built)
    by_path = {p.path: p for p in parameters}

    def made(path, leaf):  # an abstract model (the memory budget's path): the values made so far in place
        p = by_path.get(_path(path))
        if isinstance(leaf, jax.ShapeDtypeStruct) and p is not None and not isinstance(p.value, jax.ShapeDtypeStruct):
            return p.value
        return leaf

    state = jax.tree_util.tree_map_with_path(made, state)
    leaves = Leaves(state, by_path, _path)

    def fn(values, inputs):
        return nnx.merge(graphdef, leaves.with_values(values))(*inputs, **call_kwargs)

    return Forward(fn, leaves.keys, leaves.values, tuple(call_args), mesh_of(leaves.fixed))


def _variables(model) -> dict[tuple[str, str], Any]:
    """``{(Variable type, "a/b"): raw value}`` of a built (or abstract) module."""
    from flax import nnx  # lazy: Flax loads only when a Flax target is used

    return {
        (type(node).__name__, "/".join(str(p) for p in path)): node.get_raw_value()
        for path, node in nnx.iter_graph(model)
        if isinstance(node, nnx.Variable)
    }


def _build(target: Model):
    from flax import nnx  # lazy: Flax loads only when a Flax target is used

    return target.model(*target.args, **dict(target.kwargs), rngs=nnx.Rngs(**_seeds(target.rng)))


class Nnx:
    """Flax nnx: a Module class or a factory taking ``rngs=``, built as ``model(*inputs, rngs=nnx.Rngs(rng))``."""

    name, family, reinitializes = "flax.nnx", "flax", True
    settings: tuple[Setting, ...] = ()

    def recognises(self, model) -> bool:
        return sys.modules.get("flax.nnx") is not None and callable(model)

    def refusal(self, model) -> str | None:
        nnx = sys.modules.get("flax.nnx")
        if nnx is None or not isinstance(model, nnx.Module):
            return None
        return (
            f"model={type(model).__name__}(...) is an nnx Module that is already built; pass its "
            "class (with the constructor's arguments as inputs) or a factory taking rngs=, so that "
            "initcheck can watch the construction"
        )

    def describe(self, model) -> str:
        return qualified_name(self.name, model)

    def record(self, target: Model, settings: Mapping[str, Any]) -> Recording:
        built, parameters = record(target.model, target.args, target.rng, dict(target.kwargs))
        return Recording(parameters, built)

    def record_abstract(
        self, target: Model, settings: Mapping[str, Any], other: Any = None, whole: bool = False
    ) -> Recording:
        built, parameters = record_abstract(
            target.model, target.args, target.rng, dict(target.kwargs), other_rng=other, whole=whole
        )
        return Recording(parameters, built)

    def forward(self, target: Model, recording: Recording) -> Forward:
        return _forward(recording.built, recording.parameters, target.call_args, target.call_kwargs)

    def values(self, target: Model) -> dict[str, Any]:
        return {path: value for (_, path), value in _variables(_build(target)).items()}

    def shapes(self, target: Model) -> dict[tuple[str, str], Any]:
        from flax import nnx  # lazy: Flax loads only when a Flax target is used

        return _variables(nnx.eval_shape(lambda: _build(target)))

    def key_cause(self) -> str:
        return SAME_KEY

    def ignored_key_cause(self) -> str:
        return "not derived from the model's rngs (an nnx.Rngs made inside the model?)"


FRAMEWORK = Nnx()


def catalog_entries() -> list[CatalogEntry]:
    """``flax.nnx.initializers``: JAX's builders, re-exported, and ``zeros_init``/``ones_init``."""
    return linen.initializer_entries(*flax_laws.initializer_modules()[1])
