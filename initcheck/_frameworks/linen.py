"""Audit a Flax linen Module: watch ``init`` create every variable, derive each key with
initcheck's own rules (``derive``), and apply the declared initializer to it.

Flax's objects are only watched, never used to derive a key:

- ``Scope.make_rng``: every key drawn, in which scope and stream, under which transforms;
- ``Scope.param`` / ``Scope.variable``: every value created, with its init function and arguments;
- the lifted transforms: ``lift.pack`` (a transform is active), ``lift.tree_map_rngs`` (it splits
  streams into one key per slice), ``meta.add_axis`` (it stacks a collection's slices on an axis)
  and ``linen.transforms.fork_rngs`` (``nn.jit`` restarts the module's streams from keys it draws).

The rules, read from the pinned ``flax/core/lift.py`` and ``linen/transforms.py`` and checked bit for
bit in ``tests/test_lifts.py``: a key is ``fold_in(base, u32(sha1(suffix + counter)[:4]))``. The base
is the init's stream key; ``nn.vmap``/``nn.scan`` with ``split_rngs`` replace it by
``split(base, L)[i]`` in slice ``i`` (the suffix is kept); ``nn.jit`` replaces it by a key the module
draws (``make_rng``) and restarts the suffix at the module. Counters are per (scope, stream), shared
by every trace of a lifted body: ``nn.scan`` traces its body twice at init, so a scanned Dense's
kernel is ``make_rng`` #3 of its scope.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

import initcheck.strategies as strategies  # (installed from strategies/: mypy reads it as Any)
from initcheck import laws
from initcheck._entries import CatalogEntry, complex_dtypes, real_dtypes
from initcheck._frameworks import _observed as observed
from initcheck._frameworks import derive, flax_laws, jax_nn
from initcheck._frameworks._declared import declared_law
from initcheck._frameworks._protocol import IGNORED_KEY, Recording, Setting, qualified_name
from initcheck._record import (
    Forward,
    Lazy,
    Model,
    Parameter,
    apply_inputs,
    compare,
    guarded,
    key_of,
    mesh_of,
    nested,
    replaced,
    stack_axes,
    stacked_positions,
    tracked,
    tree_values,
    values_of,
)

MAPPED = {"vmap": "nn.vmap", "scan": "nn.scan"}  # lifts that map over slices
PASSING = {
    "jit",
    "remat",
    "map_variables",
    "vjp",
    "jvp",
    "value_and_grad",
    "custom_vjp",
    "fold_rngs",
    "named_call",
}  # lifts that hand the keys through unchanged


@dataclasses.dataclass(eq=False)
class _Lift:
    """An active lifted transform (``lift.pack``'s name)."""

    name: str
    splits: dict = dataclasses.field(default_factory=dict)  # stream -> slices: split(base, slices)[i]
    axes: dict = dataclasses.field(default_factory=dict)  # collection -> axis its slices stack on
    folded: bool = False  # keys folded with a loop index


@dataclasses.dataclass(eq=False)
class _Fork:
    """``fork_rngs`` (``nn.jit`` and co.): the module's streams restart from keys it draws."""

    path: tuple[str, ...]
    draws: dict  # stream -> _Draw


@dataclasses.dataclass(eq=False)
class _Draw:
    path: tuple[str, ...]  # the scope's path
    stream: str  # the stream it draws from (a missing stream falls back to params)
    frames: tuple  # the transforms active when it was drawn, outermost first
    key: Any  # what Flax handed over (a tracer inside lifted transforms)
    counter: int = 0  # its make_rng number in the scope, counted by initcheck


@dataclasses.dataclass(eq=False)
class _Created:
    path: tuple[str, ...]
    collection: str
    name: str
    init: Callable
    args: tuple
    kwargs: dict
    frames: tuple
    draw: _Draw | None  # the key a parameter's init was called with
    draws: list  # keys drawn while a variable's init function ran
    module: Any = None
    made: Any = None  # what a variable's init function returned (its value at creation)
    key_arg: tuple | None = None  # (argument index, _Draw) of a key handed to a variable's init function
    seen: observed.KnownCall | None = None  # a known initializer whose output its init function returned


@dataclasses.dataclass
class _Recording:
    frames: list = dataclasses.field(default_factory=list)
    draws: list = dataclasses.field(default_factory=list)
    created: list = dataclasses.field(default_factory=list)
    modules: list = dataclasses.field(default_factory=list)
    sown: set = dataclasses.field(default_factory=set)
    known: list = dataclasses.field(default_factory=list)  # known initializers seen called
    forked: list = dataclasses.field(default_factory=list)  # paths of modules nn.jit forked


def _stream_leaves(tree):
    """(stream, key) for every LazyRng of a group of scopes' rngs."""
    from flax.core.scope import LazyRng  # lazy: Flax loads only when a Flax target is used

    flat, _ = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: isinstance(x, LazyRng))
    return [(getattr(path[-1], "key", None), leaf.rng if isinstance(leaf, LazyRng) else leaf) for path, leaf in flat]


@contextlib.contextmanager
def _watching(rec: _Recording):
    import flax.linen as nn  # lazy: Flax loads only when a Flax target is used
    from flax.core import lift, meta  # lazy: Flax loads only when a Flax target is used
    from flax.core.scope import Scope  # lazy: Flax loads only when a Flax target is used
    from flax.linen import transforms  # lazy: Flax loads only when a Flax target is used

    originals = {
        (Scope, "make_rng"): Scope.make_rng,
        (Scope, "param"): Scope.param,
        (Scope, "variable"): Scope.variable,
        (nn.Module, "param"): nn.Module.param,
        (nn.Module, "sow"): nn.Module.sow,
        (lift, "pack"): lift.pack,
        (lift, "tree_map_rngs"): lift.tree_map_rngs,
        (meta, "add_axis"): meta.add_axis,
        (transforms, "fork_rngs"): transforms.fork_rngs,
    }

    def make_rng(scope, name="params"):
        key = originals[Scope, "make_rng"](scope, name)
        stream = name if name in scope.rngs else "params"  # Flax's fallback
        rec.draws.append(_Draw(tuple(scope.path), stream, tuple(rec.frames), key))
        return key

    def param(scope, name, init_fn, *init_args, unbox=True, **init_kwargs):
        if scope.has_variable("params", name):
            return originals[Scope, "param"](scope, name, init_fn, *init_args, unbox=unbox, **init_kwargs)
        start, frames, seen = len(rec.draws), tuple(rec.frames), len(rec.known)
        value = originals[Scope, "param"](scope, name, init_fn, *init_args, unbox=unbox, **init_kwargs)
        path = tuple(scope.path)
        draw = next((d for d in rec.draws[start:] if d.path == path), None)
        module = rec.modules[-1] if rec.modules and rec.modules[-1][0] == name else None
        rec.created.append(
            _Created(
                path,
                "params",
                name,
                init_fn,
                init_args,
                init_kwargs,
                frames,
                draw,
                [],
                module=module and module[1],
                seen=observed.made_by(_unboxed(value), rec.known[seen:]),
            )
        )
        return value

    def variable(scope, col, name, init_fn=None, *init_args, unbox=True, **init_kwargs):
        if init_fn is None or scope.has_variable(col, name):
            return originals[Scope, "variable"](scope, col, name, init_fn, *init_args, unbox=unbox, **init_kwargs)
        start, frames, made, seen = len(rec.draws), tuple(rec.frames), [], len(rec.known)

        def spy(*args, **kwargs):
            made.append(init_fn(*args, **kwargs))
            return made[-1]

        result = originals[Scope, "variable"](scope, col, name, spy, *init_args, unbox=unbox, **init_kwargs)
        key_arg = next(
            ((i, d) for i, arg in enumerate(init_args) for d in reversed(rec.draws[:start]) if arg is d.key), None
        )
        rec.created.append(
            _Created(
                tuple(scope.path),
                col,
                name,
                init_fn,
                init_args,
                init_kwargs,
                frames,
                None,
                rec.draws[start:],
                made=made[0] if made else None,
                key_arg=key_arg,
                seen=observed.made_by(_unboxed(made[0]), rec.known[seen:]) if made else None,
            )
        )
        return result

    def module_param(self, name, *args, **kwargs):
        rec.modules.append((name, self))
        try:
            return originals[nn.Module, "param"](self, name, *args, **kwargs)
        finally:
            rec.modules.pop()

    def sow(self, col, name, *args, **kwargs):
        if self.scope is not None:
            rec.sown.add((col, (*self.scope.path, name)))
        return originals[nn.Module, "sow"](self, col, name, *args, **kwargs)

    signature = inspect.signature(lift.pack)

    def pack(*args, **kwargs):
        wrapper = originals[lift, "pack"](*args, **kwargs)
        name = signature.bind(*args, **kwargs).arguments.get("name") or "?"

        def watched(*call_args, **call_kwargs):
            rec.frames.append(_Lift(name))
            try:
                return wrapper(*call_args, **call_kwargs)
            finally:
                rec.frames.pop()

        return watched

    def tree_map_rngs(fn, tree):
        out = originals[lift, "tree_map_rngs"](fn, tree)
        frame = rec.frames[-1] if rec.frames else None
        if isinstance(frame, _Lift):
            for (stream, before), (_, after) in zip(_stream_leaves(tree), _stream_leaves(out)):
                shape_in, shape_out = np.shape(before), np.shape(after)
                if len(shape_out) == len(shape_in) + 1 and shape_out[1:] == shape_in:
                    frame.splits[stream] = shape_out[0]
                else:
                    frame.folded = True
        return out

    def add_axis(tree, index, params):
        frame = rec.frames[-1] if rec.frames else None
        if isinstance(frame, _Lift):
            for group in tree if isinstance(tree, (tuple, list)) else (tree,):  # one group per scope
                for collection in group if isinstance(group, dict) else ():
                    frame.axes[collection] = index
        return originals[meta, "add_axis"](tree, index, params)

    @contextlib.contextmanager
    def fork_rngs(module):
        start = len(rec.draws)
        with originals[transforms, "fork_rngs"](module):
            path = tuple(module.scope.path) if module.scope is not None else ()
            rec.frames.append(_Fork(path, {d.stream: d for d in rec.draws[start:] if d.path == path}))
            rec.forked.append(path)
            try:
                yield
            finally:
                rec.frames.pop()

    patched = {
        (Scope, "make_rng"): make_rng,
        (Scope, "param"): param,
        (Scope, "variable"): variable,
        (nn.Module, "param"): module_param,
        (nn.Module, "sow"): sow,
        (lift, "pack"): pack,
        (lift, "tree_map_rngs"): tree_map_rngs,
        (meta, "add_axis"): add_axis,
        (transforms, "fork_rngs"): fork_rngs,
    }
    for (owner, attr), fn in patched.items():
        setattr(owner, attr, fn)
    try:
        with observed.watching(rec.known):
            yield
    finally:
        for (owner, attr), fn in originals.items():
            setattr(owner, attr, fn)


def _unboxed(value):
    """A value without Flax's metadata box (``nn.Partitioned`` and co.)."""
    from flax.core import meta  # lazy: Flax loads only when a Flax target is used

    return meta.unbox(value)


def _tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _dense_general(module, shape) -> tuple[laws.Law | None, tuple[int, ...] | None]:
    """``nn.DenseGeneral``'s kernel is ``batch + inputs + features``; it calls ``kernel_init`` on
    the kernel reshaped to ``(prod(batch) * prod(inputs), prod(features))``."""
    return general_kernel_law(
        declared_law(module.kernel_init), shape, len(_tuple(module.batch_dims)), len(_tuple(module.features))
    )


def general_kernel_law(base, shape, n_batch: int, n_out: int) -> tuple[laws.Law | None, tuple[int, ...] | None]:
    """The law of a ``batch + inputs + outputs`` kernel drawn flat as ``(batch * inputs, outputs)``
    and reshaped (linen ``DenseGeneral``, nnx ``LinearGeneral``), and the flat shape when the law
    holds on it only. Without batch axes: variance scaling over the stored inputs and outputs (the
    flat draw's fans). With batch axes the layer counts them in fan_in: the declared law holds on the
    flat draw, and ``effective_fan`` shows the fan the layer really contracts over. A law with a
    structure (``orthogonal()``) holds on the flat draw only: the matrix it made orthonormal."""
    n_in = len(shape) - n_batch - n_out
    if n_batch or (base is not None and base.has_structure):
        return base, (math.prod(shape[: n_batch + n_in]), math.prod(shape[n_batch + n_in :]))
    if not isinstance(base, laws.VarianceScaling) or base.fans != "jax":
        return base, None
    axes = lambda a, b: tuple(range(a, b))
    law = laws.VarianceScaling(
        base.scale, base.mode, base.distribution, in_axis=axes(0, n_in), out_axis=axes(n_in, len(shape))
    )
    return law, None


def _law(c: _Created, shape) -> tuple[laws.Law | None, tuple[int, ...] | None]:
    """The law of a value made by ``c`` (laid out as ``shape``), and the shape the initializer drew
    when the layer reshaped its draw and the law holds on the draw only."""
    import flax.linen as nn  # lazy: Flax loads only when a Flax target is used

    if isinstance(c.module, nn.DenseGeneral):  # calls wrappers of kernel_init and bias_init
        if c.name == "kernel":
            return _dense_general(c.module, shape)
        return declared_law(c.module.bias_init), None
    if isinstance(c.module, nn.PReLU) and c.name == "negative_slope":  # a lambda of its constructor's value
        return laws.Constant(float(c.module.negative_slope_init)), None
    law = declared_law(c.init)
    if law is None and c.seen is not None and tuple(c.seen.shape) == tuple(shape):
        return c.seen.law, None  # an init function around a known initializer that returned its output
    return law, None


@dataclasses.dataclass
class _Context:
    roots: dict  # stream -> typed root key
    legacy: bool  # the init got raw uint32 keys: hand initializers the same kind
    fix: bool  # flax_fix_rng_separator
    own: Callable | None = None  # the abstract path: (collection, names) -> the model's own init of that value


def _derived(c: _Created, stacks: dict, ctx: _Context, draw: _Draw, make: Callable) -> tuple[Any, Any]:
    """The derived key(s) of a value and ``make(key)`` on them: the expected value laid out as the
    stored one, or, on the abstract path, slice ``i``'s maker (nothing is made yet)."""
    bases = {s: (k, ()) for s, k in ctx.roots.items()}
    if ctx.own is None:

        def leaf(bases):
            key = _draw_key(draw, bases, ctx)
            return key, make(key)

        keys, expected = _evaluate(c.frames, bases, stacks, leaf, ctx)
        return keys, stack_axes(expected, _insert_axes(stacks, c))
    keys = _evaluate(c.frames, bases, stacks, lambda b: _draw_key(draw, b, ctx), ctx)
    flat = jax.numpy.reshape(keys, (-1,)) if stacks else keys[None]
    return keys, lambda i: make(flat[i])


def _lazy(where: tuple, declared: Callable, ctx: _Context) -> Lazy:
    assert ctx.own is not None  # (only on the abstract path)
    return Lazy(declared, ctx.own(*where))


def _draw_key(draw: _Draw, bases: dict, ctx: _Context):
    base, base_path = bases[draw.stream]
    return derive.linen_key(base, draw.path[len(base_path) :], draw.counter, fix_separator=ctx.fix)


def _evaluate(frames: tuple, bases: dict, stacks: dict, leaf: Callable, ctx: _Context):
    """``leaf(bases)`` under ``frames``, mirroring them: a fork restarts the streams it forks, a
    mapped lift that stacks this value splits its streams and maps (``jax.vmap`` for ``nn.vmap``,
    one call per slice for ``nn.scan``, as Flax runs them); returns the leaf's results stacked."""
    if not frames:
        return leaf(bases)
    frame, rest = frames[0], frames[1:]
    if isinstance(frame, _Fork):
        forked = {stream: (_draw_key(d, bases, ctx), frame.path) for stream, d in frame.draws.items()}
        return _evaluate(rest, {**bases, **forked}, stacks, leaf, ctx)
    if frame not in stacks:
        return _evaluate(rest, bases, stacks, leaf, ctx)
    count = stacks[frame]
    split = {s: derive.linen_split(bases[s][0], count) for s in frame.splits if s in bases}

    def one(keys):
        return _evaluate(rest, {**bases, **{s: (k, bases[s][1]) for s, k in keys.items()}}, stacks, leaf, ctx)

    if frame.name == "vmap":
        if split:
            return jax.vmap(one)(split)
        return jax.tree_util.tree_map(lambda x: jax.numpy.stack([x] * count), one({}))
    outs = [one({s: k[i] for s, k in split.items()}) for i in range(count)]
    return jax.tree_util.tree_map(lambda *xs: jax.numpy.stack(xs), *outs)


def _unmodelled(c: _Created, stream: str | None) -> str:
    """Why a value made under these transforms cannot be derived exactly, or ''."""
    for frame in c.frames:
        if not isinstance(frame, _Lift):
            continue
        name = MAPPED.get(frame.name, f"nn.{frame.name}")
        if frame.name not in MAPPED and frame.name not in PASSING:
            return f"created inside {name}, whose keys initcheck does not model"
        if frame.folded:
            return f"created inside {name}, which folds a loop index into its keys (not modelled)"
        if frame.name in MAPPED and stream in frame.splits and c.collection not in frame.axes:
            return f"created inside {name}, which splits its keys but does not stack its collection {c.collection!r}"
    return ""


def _describe(c: _Created, stacks: dict, draw: _Draw | None) -> tuple[str, str]:
    """The base key of a value's draw as an expression (outermost transform first) and the
    transforms in words: ``("split(params, 4)[i]", "nn.scan over 4 slices")``."""
    expr, words, index = draw.stream if draw else "", [], iter("ijklmn")
    for frame in c.frames:
        if isinstance(frame, _Fork) and draw is not None and draw.stream in frame.draws:
            d = frame.draws[draw.stream]
            expr = f"jit_key (make_rng #{d.counter} of {draw.stream!r} in scope {'/'.join(frame.path) or '<root>'})"
            words.append(f"nn.jit at {'/'.join(frame.path) or '<root>'}")
        elif frame in stacks:
            name = MAPPED[frame.name]
            if draw is not None and draw.stream in frame.splits:
                expr = f"split({expr}, {stacks[frame]})[{next(index)}]"
                words.append(f"{name} over {stacks[frame]} slices")
            else:
                words.append(f"{name} over {stacks[frame]} slices with the same key")
    return expr, ", ".join(words)


def _stacking(c: _Created, shape) -> tuple[dict, tuple[int, ...]]:
    """The mapped lifts that stack this value (frame -> slices) and the stored axes of its slices."""
    frames = [f for f in c.frames if isinstance(f, _Lift) and f.name in MAPPED and c.collection in f.axes]
    if not frames:
        return {}, ()
    positions = stacked_positions(tuple(f.axes[c.collection] for f in frames), len(shape) - len(frames))
    return {f: shape[p] for f, p in zip(frames, positions)}, positions


def root_rngs(rng):
    """``module.init``'s rng from the audit's: an int seeds ``jax.random.key``, in a dict of streams too."""
    if isinstance(rng, int):
        return jax.random.key(rng)
    if isinstance(rng, dict):
        return {stream: jax.random.key(k) if isinstance(k, int) else k for stream, k in rng.items()}
    return rng


def record(module, inputs, rng, *, kwargs=None, fix_separator: bool | None = None) -> list[Parameter]:
    """Run ``module.init(rng, *inputs, **kwargs)`` eagerly and return every value it created with its
    derived key(s). A value created inside a cached ``nn.jit`` trace is not seen being created:
    then JAX's caches are cleared and the init runs once more."""
    from flax import config  # lazy: Flax loads only when a Flax target is used

    fix = bool(config.flax_fix_rng_separator) if fix_separator is None else fix_separator
    rng = root_rngs(rng)
    roots = derive.linen_roots(rng)
    for attempt in range(2):
        rec = _Recording()
        with _watching(rec):
            variables = module.init(rng, *inputs, **(kwargs or {}))
        values = _flat_variables(variables, rec.sown)
        created = _last_creations(rec)
        unseen = [names for key, names in (k for k in values if k not in created)]
        if attempt or not any(names[: len(f)] == f for names in unseen for f in rec.forked):
            break
        jax.clear_caches()  # a jitted module whose trace JAX had cached: trace it again
    counters: dict[tuple, int] = {}
    for draw in rec.draws:
        draw.counter = counters[draw.path, draw.stream] = counters.get((draw.path, draw.stream), 0) + 1
    legacy = any(not jax.dtypes.issubdtype(k.dtype, jax.dtypes.prng_key) for k in roots.values())
    ctx = _Context({s: derive.typed(k) for s, k in roots.items()}, legacy, fix)
    return [
        guarded("/".join(key[1]), value, key[0], functools.partial(_parameter, key, value, created.get(key), ctx))
        for key, value in values.items()
    ]


def record_abstract(
    module, inputs, rng, *, kwargs=None, fix_separator: bool | None = None, other_rng=None, whole: bool = False
) -> list[Parameter]:
    """``module.init`` traced under ``jax.eval_shape`` (no value made), every value it creates with
    its derived key(s) and a ``Lazy`` that makes it: slice by slice from its declared initializer,
    or whole by the model's own init pruned to it (from ``rng``, or from ``other_rng``); with
    ``whole``, by one jitted init of the whole model, run once per root and shared by every value."""
    from flax import config  # lazy: Flax loads only when a Flax target is used

    fix = bool(config.flax_fix_rng_separator) if fix_separator is None else fix_separator
    rng = root_rngs(rng)
    roots = derive.linen_roots(rng)
    init = lambda: module.init(rng, *inputs, **(kwargs or {}))
    rec = _Recording()
    with _watching(rec):
        shapes = jax.eval_shape(init)
    values = _flat_variables(shapes, rec.sown)
    created = _last_creations(rec)
    counters: dict[tuple, int] = {}
    for draw in rec.draws:
        draw.counter = counters[draw.path, draw.stream] = counters.get((draw.path, draw.stream), 0) + 1
    legacy = any(not jax.dtypes.issubdtype(k.dtype, jax.dtypes.prng_key) for k in roots.values())
    init_from = lambda r: module.init(r, *inputs, **(kwargs or {}))
    other = root_rngs(other_rng) if other_rng is not None else None

    whole_init = jax.jit(lambda r: _unboxed(init_from(r)))
    made: dict[bool, Any] = {}

    def own(collection: str, names: tuple[str, ...]):
        if whole:  # one jitted init of the whole model (per root), shared by every value

            def from_whole(again=False):
                if again not in made:
                    made[again] = whole_init(other if again else rng)
                return _leaf(made[again], collection, names)

            return from_whole
        program = jax.jit(lambda r: _leaf(_unboxed(init_from(r)), collection, names))
        return lambda again=False: program(other if again else rng)

    ctx = _Context({s: derive.typed(k) for s, k in roots.items()}, legacy, fix, own=own)
    parameters = [
        guarded("/".join(key[1]), value, key[0], functools.partial(_parameter, key, value, created.get(key), ctx))
        for key, value in values.items()
    ]
    return [  # a value with nothing derived is still made by the model's own init
        p if p.lazy is not None else dataclasses.replace(p, lazy=Lazy(None, own(*key)))
        for p, key in zip(parameters, values)
    ]


def _leaf(variables, collection: str, names: tuple[str, ...]):
    node = variables[collection]
    for name in names:
        node = node[name]
    return node


def _flat_variables(variables, sown) -> dict:
    """(collection, path) -> value, unboxed, of every variable the init made (sown values aside)."""
    from flax.core import meta  # lazy: Flax loads only when a Flax target is used

    out = {}
    for collection, tree in meta.unbox(variables).items():
        flat, _ = jax.tree_util.tree_flatten_with_path(tree)
        for path, value in flat:
            names = tuple(str(getattr(p, "key", getattr(p, "idx", p))) for p in path)
            if not any((collection, names[:k]) in sown for k in range(1, len(names) + 1)):
                out[collection, names] = value
    return out


def _last_creations(rec: _Recording) -> dict:
    """(collection, path) -> its last creation: a body traced twice (nn.scan) creates it twice, and
    the last trace made the stored value."""
    return {(c.collection, (*c.path, c.name)): c for c in rec.created}


def _mapped_view(p: Parameter, c: _Created) -> Parameter:
    """A value made inside ``nn.map_variables`` is stored as the transform's view of it
    (``nn.WeightNorm`` and ``nn.SpectralNorm`` store normalized kernels): when that view differs from
    what the initializer made, neither the derivation nor the law can be checked on it."""
    mapped = any(isinstance(f, _Lift) and f.name == "map_variables" for f in c.frames)
    if p.lazy is not None and mapped:
        return dataclasses.replace(
            p,
            unaudited="created inside nn.map_variables, whose stored view the abstract path (memory budget) "
            "does not model; audit it with a larger memory= to compare the view",
        )
    if p.expected is None or not mapped:
        return p
    if compare(p.array, p.expected)[0]:
        return p
    return dataclasses.replace(
        p,
        expected=None,
        unaudited=(
            "created inside nn.map_variables, which stores a transformed view of it (e.g. the normalized kernel of "
            "nn.WeightNorm or nn.SpectralNorm); initcheck does not model that transformation"
        ),
    )


def _parameter(where, value, c: _Created | None, ctx: _Context) -> Parameter:
    collection, names = where
    path = "/".join(names)
    if c is None:
        return Parameter(
            path=path,
            value=value,
            declared=None,
            collection=collection,
            unaudited="initcheck did not see it being created (a value stored by the model itself, "
            "or an init function that returned a tree)",
        )
    shape = tuple(np.shape(value))
    stream = c.draw.stream if c.draw is not None else None
    if why := _unmodelled(c, stream):
        return Parameter(path=path, value=value, declared=c.init, collection=collection, unaudited=why)
    stacks, stacked = _stacking(c, shape)
    slice_shape = tuple(s for i, s in enumerate(shape) if i not in stacked)
    if c.collection == "params":
        return _mapped_view(_param(path, value, c, stacks, stacked, slice_shape, ctx), c)
    return _mapped_view(_variable(path, value, c, stacks, stacked, ctx), c)


def _root_form(key, ctx: _Context):
    return jax.random.key_data(key) if ctx.legacy else key


def _key_text(draw: _Draw, c: _Created, stacks: dict, ctx: _Context) -> tuple[str, str]:
    """How a draw's key is derived, in words, and the transforms it went through."""
    base, transform = _describe(c, stacks, draw)
    forks = [f for f in c.frames if isinstance(f, _Fork) and draw.stream in f.draws]
    suffix = draw.path[len(forks[-1].path) :] if forks else draw.path
    data = derive.linen_hash_input(suffix, draw.counter, fix_separator=ctx.fix)
    return (
        f"fold_in({base}, sha1({data!r})[:4]) (make_rng #{draw.counter} in scope {'/'.join(draw.path) or '<root>'})"
    ), transform


def _param(path, value, c, stacks, stacked, slice_shape, ctx) -> Parameter:
    from flax.core import meta  # lazy: Flax loads only when a Flax target is used

    law, draw_shape = _law(c, slice_shape)
    draw = c.draw
    if draw is None:
        return Parameter(
            path=path,
            value=value,
            declared=c.init,
            law=law,
            draw_shape=draw_shape,
            stacked=stacked,
            underived="Flax drew no key for it (make_rng was not called while it was created)",
        )

    make = lambda key: meta.unbox(c.init(_root_form(key, ctx), *c.args, **c.kwargs))
    keys, expected = _derived(c, stacks, ctx, draw, make)
    text, transform = _key_text(draw, c, stacks, ctx)
    problem = None
    if (
        not stacks
        and not isinstance(draw.key, jax.core.Tracer)
        and derive.key_bytes(draw.key) != derive.key_bytes(keys)
    ):
        problem = f"Flax handed {path} a different key than the linen rule gives: {text}"
    return Parameter(
        path=path,
        value=value,
        declared=c.init,
        drawn_by=c.seen.init if c.seen is not None else None,
        expected=None if callable(expected) else expected,
        lazy=_lazy(("params", (*c.path, c.name)), expected, ctx) if callable(expected) else None,
        key=jax.numpy.reshape(keys, (-1,)) if stacks else keys,
        problem=problem,
        law=law,
        draw_shape=draw_shape,
        derivation=text,
        stacked=stacked,
        transform=transform,
    )


def _insert_axes(stacks: dict, c: _Created) -> tuple[int, ...]:
    """The axis each stacking transform inserts for the value's collection, outermost first."""
    return tuple(frame.axes[c.collection] for frame in stacks)


def _variable(path, value, c, stacks, stacked, ctx) -> Parameter:
    """A variable of another collection (``self.variable(col, name, init_fn, *args)``)."""
    law = declared_law(c.init) or (c.seen.law if c.seen is not None else None)
    base = Parameter(
        path=path,
        value=value,
        declared=c.init,
        collection=c.collection,
        law=law,
        stacked=stacked,
        transform=_describe(c, stacks, c.key_arg and c.key_arg[1])[1],
    )
    if c.key_arg is not None:
        return _keyed_variable(base, c, stacks, ctx)
    if c.draws:
        return dataclasses.replace(
            base,
            underived=(
                f"its init function draws {len(c.draws)} key(s) itself (make_rng inside it), so initcheck cannot "
                "run it again on a derived key; pass the key as an argument: self.variable(col, name, init, "
                "self.make_rng('params'), shape)"
            ),
        )
    return _deterministic_variable(base, c, stacks, ctx)


def _keyed_variable(base: Parameter, c: _Created, stacks, ctx) -> Parameter:
    """``self.variable(col, name, init, self.make_rng(stream), *shape)``: an initializer handed a
    key drawn just before; that draw is derived like a parameter's."""
    assert c.key_arg is not None  # (only called for a variable handed a key)
    index, draw = c.key_arg

    def make(key):
        args = list(c.args)
        args[index] = _root_form(key, ctx)
        return c.init(*args, **c.kwargs)

    keys, expected = _derived(c, stacks, ctx, draw, make)
    text, _ = _key_text(draw, c, stacks, ctx)
    return dataclasses.replace(
        _as_created(base, c),
        expected=None if callable(expected) else expected,
        lazy=_lazy((c.collection, (*c.path, c.name)), expected, ctx) if callable(expected) else None,
        key=jax.numpy.reshape(keys, (-1,)) if stacks else keys,
        derivation=f"{text}, handed to its init function",
    )


def _as_created(base: Parameter, c: _Created) -> Parameter:
    """A variable as its init function made it, when the model changed it later in the same init
    (a running statistic, SpectralNorm's power iteration, a step counter)."""
    made = None if c.made is None or isinstance(c.made, jax.core.Tracer) else np.asarray(_unboxed(c.made))
    if made is None or made.shape != base.shape or np.array_equal(made, base.array, equal_nan=True):
        return base
    return dataclasses.replace(
        base, value=made, note="the model changed it during init after creating it; audited as created"
    )


def _deterministic_variable(base: Parameter, c: _Created, stacks, ctx: _Context) -> Parameter:
    """A variable whose init function draws no key: its value is what the function gives, for
    every key. initcheck runs the function again and compares."""
    try:
        again = np.asarray(c.init(*c.args, **c.kwargs))
    except Exception as exc:  # noqa: BLE001 - a closure over the module's scope cannot run outside it
        return dataclasses.replace(
            base, underived=f"its init function cannot run outside the model ({type(exc).__name__}: {exc})"
        )
    made = None if c.made is None or isinstance(c.made, jax.core.Tracer) else np.asarray(_unboxed(c.made))
    if made is not None and made.shape == again.shape and not np.array_equal(made, again, equal_nan=True):
        return dataclasses.replace(
            base,
            problem="its init function gives a different value on a second call "
            "(hidden state or a global random generator?)",
        )
    if ctx.own is not None:
        lazy = _lazy((c.collection, (*c.path, c.name)), lambda i: again, ctx)
        return dataclasses.replace(
            base,
            lazy=lazy,
            law=base.law or laws.Deterministic(again),
            derivation="no key: its init function draws none, and gives the same value again",
        )
    expected = np.stack([again] * max(1, math.prod(stacks.values())))
    expected = stack_axes(expected.reshape((*stacks.values(), *again.shape)), _insert_axes(stacks, c))
    return dataclasses.replace(
        _as_created(base, c),
        expected=expected,
        law=base.law or laws.Deterministic(again),
        derivation="no key: its init function draws none, and gives the same value again",
    )


def _forward(target: Model, parameters: list[Parameter], call_args: tuple, call_kwargs: Mapping) -> Forward:
    """``module.apply(variables, *inputs, rngs=..., mutable=True)`` (batch statistics update as in training)."""
    split = lambda path: path.split("/")
    tree = nested(parameters, split)
    keys = [(p.collection, p.path) for p in parameters if tracked(p)]
    rng = target.rng
    rngs = {s: key_of(k) for s, k in rng.items()} if isinstance(rng, Mapping) else {"params": key_of(rng)}

    def fn(values, inputs):
        variables = replaced(tree, keys, values, split)
        return target.model.apply(variables, *inputs, rngs=rngs, mutable=True, **call_kwargs)[0]

    values = values_of(parameters, keys)
    return Forward(fn, keys, values, call_args, mesh_of(values))


def _init(target: Model):
    return target.model.init(root_rngs(target.rng), *target.args, **dict(target.kwargs))


def _flat(tree) -> dict[str, Any]:
    """``{"collection/a/b": leaf}`` of a linen variables tree, unboxed."""
    from flax.core import meta  # lazy: Flax loads only when a Flax target is used

    return tree_values("", meta.unbox(tree))


class Linen:
    """Flax linen: a ``nn.Module``, initialized as ``module.init(rng, *inputs, **kwargs)``."""

    name, family, reinitializes = "flax.linen", "flax", True
    settings: tuple[Setting, ...] = (flax_laws.FIX_SEPARATOR,)

    def recognises(self, model) -> bool:
        nn = sys.modules.get("flax.linen")
        return nn is not None and isinstance(model, nn.Module)

    def refusal(self, model) -> str | None:
        return None

    def describe(self, model) -> str:
        return qualified_name(self.name, model)

    def record(self, target: Model, settings: Mapping[str, Any]) -> Recording:
        fix = settings.get(flax_laws.FIX_SEPARATOR.name)
        return Recording(record(target.model, target.args, target.rng, kwargs=dict(target.kwargs), fix_separator=fix))

    def record_abstract(
        self, target: Model, settings: Mapping[str, Any], other: Any = None, whole: bool = False
    ) -> Recording:
        fix = settings.get(flax_laws.FIX_SEPARATOR.name)
        return Recording(
            record_abstract(
                target.model,
                target.args,
                target.rng,
                kwargs=dict(target.kwargs),
                fix_separator=fix,
                other_rng=other,
                whole=whole,
            )
        )

    def forward(self, target: Model, recording: Recording) -> Forward:
        return _forward(target, recording.parameters, *apply_inputs(target))

    def values(self, target: Model) -> dict[str, Any]:
        return _flat(_init(target))

    def shapes(self, target: Model) -> dict[tuple[str, str], Any]:
        out = {}
        for path, leaf in _flat(jax.eval_shape(lambda: _init(target))).items():
            collection, _, rest = path.partition("/")
            out[collection, rest] = leaf
        return out

    def key_cause(self) -> str:
        return (
            "Flax linen hashes the module path and the counter without separators, so both hash the same "
            "bytes (flax issue 2157); set flax.config.update('flax_fix_rng_separator', True) or rename a module"
        )

    def ignored_key_cause(self) -> str:
        return IGNORED_KEY


FRAMEWORK = Linen()


def catalog_entries() -> list[CatalogEntry]:
    """``flax.linen.initializers``: JAX's builders, re-exported, and ``zeros_init``/``ones_init``."""
    return initializer_entries(*flax_laws.initializer_modules()[0])


def initializer_entries(prefix: str, mod) -> list[CatalogEntry]:
    """The catalog entries of one of Flax's initializer modules."""
    entries = jax_nn.jax_like(prefix, "flax", mod, reexported=True)
    for name, value in (("zeros_init", 0.0), ("ones_init", 1.0)):
        entries.append(
            CatalogEntry(
                f"{prefix}.{name}()",
                "flax",
                getattr(mod, name)(),
                laws.Constant(value),
                dtypes=real_dtypes() + complex_dtypes(),
                configurations=strategies.flax_initializers(names=[name], module=mod),
            )
        )
    return entries
