"""Equinox models: every array of the model a factory ``factory(key=...)`` builds, with the
``equinox.nn`` layer that made it, the key that layer was handed, and the value Equinox's own rules
give on that key (written here from equinox 0.13.8's sources, not imported; tested bit for bit).

While the factory runs, every construction of an ``equinox.nn`` layer is recorded (the outermost
one only: an ``MLP``'s ``Linear`` layers are derived from the ``MLP``'s key by its rule). An array is
then found in the built model by identity. Equinox's rules, for a layer handed ``key``:

* ``Linear``, ``Conv*``, ``ConvTranspose*``: ``wkey, bkey = split(key, 2)``; weight and bias
  U(-lim, lim), lim = 1/sqrt(fan), fan = in_features, or in_channels/groups times the window;
* ``Embedding``: N(0, 1) on ``key`` itself;
* ``MLP``: ``split(key, depth + 1)``, one key per ``Linear`` (the hidden ones stacked under
  ``scan=True``); ``MultiheadAttention``: ``split(key, 4)`` for the query, key, value, output projections;
* ``GRUCell``: ``split(key, 4)`` for weight_ih, weight_hh, bias, bias_n; ``LSTMCell``: ``split(key, 3)``;
  U(-1/sqrt(hidden_size), 1/sqrt(hidden_size));
* norm layers: weight 1, bias 0 (``BatchNorm(mode='batch')``'s running mean 0 and variance 1 in its
  ``State``; in mode 'ema' placeholders that its first batch overwrites);
  ``PReLU``: ``init_alpha``.

Layers built inside ``eqx.filter_vmap`` or ``jax.vmap`` calls the factory makes (Equinox's scan over
layers: ``eqx.filter_vmap(make_block)(split(key, n))``, nested vmaps too) are followed out of them: the
vmap also returns each layer's key, stacked, and an array it returns is derived slice by slice, slice
``i`` the layer's rule on the key slice ``i`` was handed (``_lifted``, ``_stacked_rules``).

Arrays the model holds that no ``equinox.nn`` layer made (user code, ``eqx.tree_at`` re-initializations)
are not derived; their law is the one ``expect=`` gives them (per slice, when a vmap stacked them),
and without one they are skipped with the reason, as are layers built inside a transform that is not
followed (``jax.lax.scan``, a vmap bound before the factory ran: see ``IN_TRANSFORM``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import math
import sys
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import initcheck.strategies as strategies  # (installed from strategies/: mypy reads it as Any)
from initcheck import laws
from initcheck._entries import CatalogEntry, real_dtypes
from initcheck._frameworks import equinox_layers, require
from initcheck._frameworks._protocol import IGNORED_KEY, Recording, Setting, qualified_name
from initcheck._record import (
    Forward,
    Lazy,
    Leaves,
    Model,
    NoForward,
    Parameter,
    guarded,
    path_text,
    stacked_positions,
    tree_values,
)

USER_MADE = (
    "no equinox.nn layer made it (user code, or a re-initialization with eqx.tree_at): initcheck "
    "cannot derive its key; give its law with expect={'<path>': law}"
)
FIXED_KEY = f"its layer was handed the same key when the model is built from another root key: {IGNORED_KEY}"
IN_TRANSFORM = (
    "it was made inside a JAX transform that initcheck does not follow for Equinox (jax.lax.scan, eqx.filter_jit, "
    "or a vmap the factory did not call as jax.vmap / eqx.filter_vmap when it ran: one bound before, e.g. a "
    "function decorated with @eqx.filter_vmap at import or `from jax import vmap`, or one with out_axes other "
    "than one int), whose keys initcheck does not model; give its law with expect={'<path>': law}"
)


@dataclasses.dataclass
class Construction:
    """One outermost ``equinox.nn`` layer built while the factory ran, and its bound arguments.

    A layer built inside vmaps the factory called (``eqx.filter_vmap``, ``jax.vmap``) is *lifted*:
    ``layer`` is one slice of it (abstract), ``arguments["key"]`` the keys its slices were handed
    (stacked, outermost vmap first), and ``axes``/``sizes``/``lifts`` each vmap's out axis, size and
    name, outermost first."""

    layer: Any
    arguments: dict
    failure: str = ""  # why Equinox's rule could not be applied to it
    axes: tuple[int, ...] = ()
    sizes: tuple[int, ...] = ()
    lifts: tuple[str, ...] = ()

    @property
    def transform(self) -> str:
        return _transform(tuple(zip(self.axes, self.sizes, self.lifts)))


@dataclasses.dataclass
class Rule:
    """What Equinox's rule gives one array of a layer: its value on the derived key(s)."""

    expected: Any
    key: Any  # the key(s) of the draw (None: a constant)
    derivation: str
    law: laws.Law | None
    stacked: tuple[int, ...] = ()
    computed: str = ""  # not an initial value: bookkeeping the layer keeps (a flag, a counter)
    transform: str = ""  # the vmaps that stacked it, in words


def _is_layer(cls) -> bool:
    return (getattr(cls, "__module__", "") or "").startswith("equinox.nn")


@dataclasses.dataclass
class _Made:
    """An array a vmap of the factory returned (kept alive: it is found by id): the construction
    that made it and its path in that layer, or, made by user code (``construction`` None), the
    vmaps that stacked it: ``(out axis, size, name)`` each, outermost first."""

    array: Any
    construction: Construction | None
    path: str = ""
    levels: tuple = ()


@contextlib.contextmanager
def _watching(constructions: list[Construction], lifted: dict | None = None):
    """Record the outermost ``equinox.nn`` constructions (the metaclass's ``__call__``, restored after),
    and follow those built inside the factory's vmaps out of them: ``lifted`` receives each array the
    outermost vmaps returned, by id (``_Made``)."""
    import equinox as eqx  # lazy: Equinox loads only when an Equinox target is used

    meta = type(eqx.Module)
    original = meta.__call__
    depth = [0]
    frames: list[dict] = [lifted if lifted is not None else {}]  # [0]: the factory's own level

    def call(cls, *args, **kwargs):
        if not _is_layer(cls) or depth[0]:
            return original(cls, *args, **kwargs)
        depth[0] += 1
        try:
            layer = original(cls, *args, **kwargs)
        finally:
            depth[0] -= 1
        try:
            bound = inspect.signature(cls).bind_partial(*args, **kwargs).arguments
        except (TypeError, ValueError):
            bound = dict(kwargs)
        c = Construction(layer, dict(bound))
        constructions.append(c)
        if len(frames) > 1:  # inside a vmap of the factory: found where that vmap returns it
            frames[-1].update({id(x): _Made(x, c, path) for path, x in _arrays(layer)})
        return layer

    jax_vmap, eqx_filter_vmap = _vmaps(frames, depth)
    swapped = [(meta, "__call__", call), (jax, "vmap", jax_vmap), (eqx, "filter_vmap", eqx_filter_vmap)]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in swapped]
    for owner, name, value in swapped:
        setattr(owner, name, value)  # a method of the metaclass and two public functions, for the factory's run
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def _vmaps(frames: list[dict], depth: list[int]):
    """``jax.vmap`` and ``eqx.filter_vmap`` as the factory sees them: a vmap with one out axis,
    called outside Equinox's own code, is followed (``_lifted``); any other runs as it is."""
    import equinox as eqx  # lazy: Equinox loads only when an Equinox target is used

    vmap, filter_vmap = jax.vmap, eqx.filter_vmap

    def jax_vmap(fun, in_axes=0, out_axes=0, *args, **options):
        if depth[0] or not isinstance(out_axes, int) or _from_equinox(fun):
            return vmap(fun, in_axes, out_axes, *args, **options)
        return _lifted(frames, fun, lambda f: vmap(f, in_axes, (out_axes, 0), *args, **options), out_axes, "jax.vmap")

    def eqx_filter_vmap(fun=None, **options):
        if fun is None:  # @eqx.filter_vmap(in_axes=...)
            return functools.partial(eqx_filter_vmap, **options)
        out_axes = options.pop("out_axes", eqx.if_array(0))
        axis = out_axes.axis if isinstance(out_axes, eqx.if_array) else out_axes
        if depth[0] or not isinstance(axis, int):
            return filter_vmap(fun, out_axes=out_axes, **options)
        return _lifted(
            frames, fun, lambda f: filter_vmap(f, out_axes=(out_axes, 0), **options), axis, "eqx.filter_vmap"
        )

    return jax_vmap, eqx_filter_vmap


def _from_equinox(fun) -> bool:
    return (getattr(fun, "__module__", None) or "").startswith("equinox")


def _lifted(frames: list[dict], fun, vmapped, axis: int, name: str):
    """``fun`` vmapped by ``vmapped`` (the vmap, its out axes extended by one for the keys), each
    ``equinox.nn`` layer built inside it followed out: the keys it was handed come out stacked beside
    ``fun``'s output, and the arrays that output holds are registered with the enclosing frame."""
    seen: dict = {}

    @functools.wraps(fun)
    def inner(*args, **kwargs):
        frames.append({})
        try:
            out = fun(*args, **kwargs)
        finally:
            made = frames.pop()
        leaves, seen["tree"] = jax.tree_util.tree_flatten(out)
        seen["found"] = found = {
            i: made.get(id(x)) or _Made(x, None) for i, x in enumerate(leaves) if isinstance(x, jax.Array)
        }
        seen["layers"] = layers = list(
            {id(m.construction): m.construction for m in found.values() if m.construction}.values()
        )
        for c in layers:  # one slice, abstract (its tracers do not outlive the vmap)
            key = c.arguments.get("key")
            c.layer, c.arguments = _abstract(c.layer), _abstract({k: v for k, v in c.arguments.items() if k != "key"})
            c.arguments["key"] = key if isinstance(key, jax.Array) else None
        return out, [c.arguments["key"] for c in layers]

    call = vmapped(inner)

    @functools.wraps(fun)
    def batched(*args, **kwargs):
        out, keys = call(*args, **kwargs)
        leaves, tree = jax.tree_util.tree_flatten(out)
        if tree == seen["tree"]:
            _register(frames[-1], leaves, keys, seen, axis, name)
        return out

    return batched


def _register(frame: dict, leaves: list, keys: list, seen: dict, axis: int, name: str) -> None:
    """The arrays a followed vmap returned, by id in ``frame``, and its layers' stacked keys and levels."""
    sizes = {}
    for i, m in seen["found"].items():
        x = leaves[i]
        n = np.shape(x)[axis if axis >= 0 else axis + np.ndim(x)]
        if m.construction is None:
            frame[id(x)] = _Made(x, None, levels=((axis, n, name), *m.levels))
        else:
            sizes[id(m.construction)] = n
            frame[id(x)] = _Made(x, m.construction, m.path)
    for c, key in zip(seen["layers"], keys):
        c.arguments["key"] = key
        c.axes, c.sizes, c.lifts = (axis, *c.axes), (sizes[id(c)], *c.sizes), (name, *c.lifts)


def _transform(levels) -> str:
    """The vmaps ``(axis, size, name)`` that stacked a value (outermost first), in words."""
    return ", inside ".join(f"{name} ({n} slices)" for _, n, name in reversed(levels))


def _traced(key) -> bool:
    return isinstance(key, jax.core.Tracer)


def _split(key, n: int):
    return jax.random.split(key, n)


def _uniform(key, shape, dtype, lim: float):
    """Equinox's ``default_init``: U(-lim, lim); complex dtypes draw the real and imaginary parts
    from ``split(key, 2)``."""
    if jnp.issubdtype(dtype, jnp.complexfloating):
        real_dtype = jnp.finfo(dtype).dtype
        rkey, ikey = jax.random.split(key, 2)
        real = jax.random.uniform(rkey, shape, real_dtype, minval=-lim, maxval=lim)
        imag = jax.random.uniform(ikey, shape, real_dtype, minval=-lim, maxval=lim)
        return real.astype(dtype) + 1j * imag.astype(dtype)
    return jax.random.uniform(key, shape, dtype, minval=-lim, maxval=lim)


def _uniform_law(lim: float, dtype) -> laws.Law | None:
    return None if jnp.issubdtype(dtype, jnp.complexfloating) else equinox_layers.uniform_within(lim)


FAN_IN_UNIFORM = equinox_layers.uniform_fan(**equinox_layers.TORCH_LAYOUT_UNIFORM)  # lim = 1/sqrt(fan)


def _weight_and_bias(layer, key, lim: float, fan_law: bool) -> dict[str, Rule]:
    """``wkey, bkey = split(key, 2)``, both U(-lim, lim). ``fan_law``: the weight's law names its fan
    (the ``in`` axis 1 times the window of PyTorch's layout ``(out, in/groups, *window)``), so that
    ``effective_fan`` can compare it with the contraction; a transposed convolution's is only U(+-lim)."""
    wkey, bkey = _split(key, 2)
    rules = {}
    for name, sub, index in (("weight", wkey, 0), ("bias", bkey, 1)):
        value = getattr(layer, name, None)
        if value is None:
            continue
        law = _uniform_law(lim, value.dtype)
        if name == "weight" and fan_law and law is not None and value.ndim >= 2 and value.shape[1] > 0:
            law = FAN_IN_UNIFORM
        rules[name] = Rule(
            _uniform(sub, value.shape, value.dtype, lim),
            sub,
            f"split(key, 2)[{index}] of the key {type(layer).__name__} was handed, U(+-{lim:.4g}), lim = 1/sqrt(fan)",
            law,
        )
    return rules


def _linear(layer, key) -> dict[str, Rule]:
    fan = 1 if layer.in_features == "scalar" else layer.in_features
    return _weight_and_bias(layer, key, 1.0 if fan == 0 else 1 / math.sqrt(fan), fan_law=True)


def _conv(layer, key) -> dict[str, Rule]:
    import equinox as eqx  # lazy: Equinox loads only when an Equinox target is used

    fan = (layer.in_channels // layer.groups) * math.prod(layer.kernel_size)
    return _weight_and_bias(layer, key, 1 / math.sqrt(fan), fan_law=not isinstance(layer, eqx.nn.ConvTranspose))


def _embedding(layer, key) -> dict[str, Rule]:
    w = layer.weight
    return {
        "weight": Rule(
            jax.random.normal(key, w.shape, w.dtype), key, "the key Embedding was handed, N(0, 1)", laws.Normal(1.0)
        )
    }


def _nested(prefix: str, rules: dict[str, Rule], how: str) -> dict[str, Rule]:
    return {
        f"{prefix}/{path}": dataclasses.replace(r, derivation=f"{how}, then {r.derivation}")
        for path, r in rules.items()
    }


def _mlp(layer, key) -> dict[str, Rule]:
    keys = _split(key, layer.depth + 1)
    out: dict[str, Rule] = {}
    last = len(layer.layers) - 1
    for i, sub in enumerate(layer.layers):
        index = layer.depth if i == last and i > 0 else i
        if getattr(layer, "scan", False) and 0 < i < last:  # the hidden layers, vmapped over keys[1:depth]
            stacked = jax.vmap(lambda k, s=sub: {p: r.expected for p, r in _linear_like(s, k).items()})(
                keys[1 : layer.depth]
            )
            halves = jax.vmap(lambda k: _split(k, 2))(keys[1 : layer.depth])  # (layers, 2): wkey, bkey
            for path, value in stacked.items():
                out[f"layers/{i}/{path}"] = Rule(
                    value,
                    halves[:, 0 if path == "weight" else 1],
                    f"split(key, {layer.depth + 1})[1:{layer.depth}] of the key MLP was handed (scan=True: "
                    f"one Linear per key, stacked), then split(., 2)[{0 if path == 'weight' else 1}]",
                    FAN_IN_UNIFORM if path == "weight" else _uniform_law(1 / math.sqrt(layer.width_size), value.dtype),
                    stacked=(0,),
                )
            continue
        out.update(
            _nested(
                f"layers/{i}",
                _linear(sub, keys[index]),
                f"split(key, {layer.depth + 1})[{index}] of the key MLP was handed",
            )
        )
    return out


def _linear_like(stacked_linear, key) -> dict[str, Rule]:
    """Rules of one slice of a stacked ``Linear`` (its arrays have a leading layer axis)."""
    sliced = jax.tree_util.tree_map(lambda x: x[0], stacked_linear)
    return _linear(sliced, key)


def _attention(layer, key) -> dict[str, Rule]:
    out: dict[str, Rule] = {}
    for i, name in enumerate(("query_proj", "key_proj", "value_proj", "output_proj")):
        how = f"split(key, 4)[{i}] of the key MultiheadAttention was handed"
        out.update(_nested(name, _linear(getattr(layer, name), _split(key, 4)[i]), how))
    return out


def _cell(layer, key, names: tuple[str, ...]) -> dict[str, Rule]:
    lim = math.sqrt(1 / layer.hidden_size)
    keys = _split(key, len(names))
    out = {}
    for i, name in enumerate(names):
        value = getattr(layer, name, None)
        if value is not None:
            out[name] = Rule(
                _uniform(keys[i], value.shape, value.dtype, lim),
                keys[i],
                f"split(key, {len(names)})[{i}] of the key {type(layer).__name__} was handed, "
                f"U(+-{lim:.4g}) with lim = 1/sqrt(hidden_size)",
                _uniform_law(lim, value.dtype),
            )
    return out


def _constants(layer, values: dict[str, float], how: str) -> dict[str, Rule]:
    out = {}
    for name, constant in values.items():
        value = getattr(layer, name, None)
        if value is not None:
            out[name] = Rule(jnp.full(value.shape, constant, value.dtype), None, how, laws.Constant(constant))
    return out


_BOOKKEEPING = {
    "ema_state_index": "BatchNorm (mode='ema') keeps placeholder buffers that its first batch overwrites",
}


def _buffer_rule(name: str, field: str, i: int, value) -> Rule:
    """The ``i``-th array a stateful layer keeps in its ``StateIndex`` ``field``: BatchNorm's running
    mean 0 and variance 1 (mode 'batch'); flags, counters, 'ema' placeholders and SpectralNorm's
    vectors are computed."""
    if name == "BatchNorm" and field == "batch_state_index":
        constant = (0.0, 1.0)[i]
        return Rule(
            jnp.full(value.shape, constant, value.dtype),
            None,
            f"{name} sets its running {('mean', 'variance')[i]} without a key",
            laws.Constant(constant),
        )
    bookkeeping = _BOOKKEEPING.get(field, f"{field}: {name}'s bookkeeping (a flag or a counter)")
    return Rule(None, None, "", None, computed=equinox_layers.DERIVED.get(name, bookkeeping))


def _batch_norm_state(layer) -> dict[str, Rule]:
    """BatchNorm's initial state as its ``StateIndex`` fields hold it before ``make_with_state``."""
    out = {}
    for field in ("ema_state_index", "batch_state_index", "ema_first_time_index", "batch_counter"):
        index = getattr(layer, field, None)
        if index is None:
            continue
        for i, value in enumerate(jax.tree_util.tree_leaves(index.init)):
            path = f"{field}/init/{i}" if field.endswith("state_index") else f"{field}/init"
            out[path] = _buffer_rule("BatchNorm", field, i, value)
    return out


def rules(construction: Construction) -> dict[str, Rule] | None:
    """Equinox's rule for every array of the layer, or None when initcheck has none for its class."""
    import equinox as eqx  # lazy: Equinox loads only when an Equinox target is used

    layer, key = construction.layer, construction.arguments.get("key")
    nn = eqx.nn
    constant = f"{type(layer).__name__} sets it without a key"
    if isinstance(layer, nn.BatchNorm):
        return {**_constants(layer, {"weight": 1.0, "bias": 0.0}, constant), **_batch_norm_state(layer)}
    if isinstance(layer, nn.LayerNorm | nn.RMSNorm | nn.GroupNorm):
        return _constants(layer, {"weight": 1.0, "bias": 0.0}, constant)
    if isinstance(layer, nn.PReLU):
        alpha = float(construction.arguments.get("init_alpha", 0.25))
        value = layer.negative_slope
        return {"negative_slope": Rule(jnp.full(value.shape, alpha, value.dtype), None, constant, laws.Constant(alpha))}
    if key is None:
        return None
    if isinstance(layer, nn.Linear):
        return _linear(layer, key)
    if isinstance(layer, nn.Conv | nn.ConvTranspose):
        return _conv(layer, key)
    if isinstance(layer, nn.Embedding):
        return _embedding(layer, key) if construction.arguments.get("weight") is None else None
    if isinstance(layer, nn.MLP):
        return _mlp(layer, key)
    if isinstance(layer, nn.MultiheadAttention):
        return _attention(layer, key)
    if isinstance(layer, nn.GRUCell):
        return _cell(layer, key, ("weight_ih", "weight_hh", "bias", "bias_n"))
    if isinstance(layer, nn.LSTMCell):
        return _cell(layer, key, ("weight_ih", "weight_hh", "bias"))
    return None


def _arrays(tree) -> list[tuple[str, Any]]:
    import equinox as eqx  # lazy: Equinox loads only when an Equinox target is used

    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return [(path_text(p), leaf) for p, leaf in leaves if eqx.is_array(leaf) or isinstance(leaf, jax.ShapeDtypeStruct)]


def root_key(rng):
    """The factory's key from the audit's ``rng``: an int seeds ``jax.random.key``; a raw uint32 key is wrapped."""
    if isinstance(rng, int | np.integer):
        return jax.random.key(int(rng))
    if not jax.dtypes.issubdtype(getattr(rng, "dtype", None), jax.dtypes.prng_key):
        return jax.random.wrap_key_data(jnp.asarray(rng, jnp.uint32))
    return rng


def build(factory, inputs, rng, kwargs):
    """What the factory returns, the ``equinox.nn`` constructions seen while it ran, and the arrays
    its vmaps returned, by id (``_watching``)."""
    constructions: list[Construction] = []
    lifted: dict[int, _Made] = {}
    with _watching(constructions, lifted):
        made = factory(*inputs, key=root_key(rng), **kwargs)
    _check_built(factory, made)
    return made, constructions, lifted


class NotEquinox(TypeError):
    """A factory taking ``key=`` that built no Equinox model."""


def _check_built(factory, made) -> None:
    """Refuse what is not an Equinox model: a factory taking ``key=`` is taken for Equinox's, and one
    of a framework initcheck does not know (penzai, a hand-rolled pytree) must not pass for it."""
    import equinox as eqx  # lazy: Equinox loads only when an Equinox target is used

    is_module = lambda x: isinstance(x, eqx.Module)
    if not any(is_module(x) for x in jax.tree_util.tree_leaves(made, is_leaf=is_module)):
        name = getattr(factory, "__qualname__", repr(factory))
        raise NotEquinox(
            f"model={name}: a factory taking key= is audited as an Equinox model, but it returned "
            f"{type(made).__module__}.{type(made).__qualname__}, which holds no equinox.Module; initcheck "
            "audits Flax linen and nnx, Haiku, Equinox and Keras models (a model of another framework is not "
            "supported: audit its initializers with initcheck.check)"
        )


def record(factory, inputs, rng, kwargs=None) -> tuple[Any, list[Parameter]]:
    """``(built, values)``: every array of the model ``factory(*inputs, key=key, **kwargs)`` builds
    (``built``: the model, or ``(model, state)`` when the factory returns its ``State`` too)."""

    made, constructions, lifted = build(factory, inputs, rng, dict(kwargs or {}))
    model, state = _split_state(made)
    by_id: dict[int, tuple[Construction, str, Rule | None]] = {}
    out = _lifted_layers(lifted)
    traced = False
    for c in constructions:
        if id(c) not in out and (c.axes or any(_traced(x) for x in jax.tree_util.tree_leaves(c.layer))):
            traced = True
            continue
        layer_rules = _guarded_rules(c)
        arrays = [(m.path, m.array) for m in lifted.values() if m.construction is c] if c.axes else _arrays(c.layer)
        for path, value in arrays:
            by_id.setdefault(id(value), (c, path, (layer_rules or {}).get(path)))
    unknown = IN_TRANSFORM if traced else USER_MADE
    values = []
    for path, value in _arrays(model):
        found = by_id.get(id(value))
        p = guarded(path, value, "params", functools.partial(_value, path, value, found, unknown))
        values.append(_user_stacked(p, lifted.get(id(value))))
    if state is not None:
        values += _state_values(model, state)
    return (model if state is None else (model, state)), values


def _lifted_layers(lifted: dict) -> set[int]:
    """The constructions (by id) whose arrays the factory's outermost vmaps returned."""
    return {id(m.construction) for m in lifted.values() if m.construction is not None}


def _guarded_rules(c: Construction) -> dict[str, Rule] | None:
    """Equinox's rules for the layer (slice by slice for a lifted one), or None with ``c.failure`` set."""
    try:
        return _rules_at(c, c.arguments.get("key")) if c.axes else rules(c)
    except Exception as exc:  # noqa: BLE001 - a layer initcheck cannot derive is that layer's skip
        c.failure = f"initcheck could not apply Equinox's rule ({type(exc).__name__}: {exc})"
        return None


def _user_stacked(p: Parameter, made: _Made | None) -> Parameter:
    """``p``, stacked as the vmaps that returned it stacked it, when user code made it inside them."""
    if made is None or made.construction is not None or not made.levels:
        return p
    axes = tuple(axis for axis, _, _ in made.levels)
    stacked = stacked_positions(axes, len(p.shape) - len(axes))
    return dataclasses.replace(p, stacked=stacked, transform=_transform(made.levels))


def _split_state(made) -> tuple[Any, Any]:
    """``(model, state)`` of what a factory returns (``state`` None unless it returned a ``State``)."""
    import equinox as eqx  # lazy: Equinox loads only when an Equinox target is used

    if isinstance(made, tuple) and len(made) == 2 and isinstance(made[1], eqx.nn.State):
        return made
    return made, None


def _abstract(tree):
    """``tree`` with every array a ``jax.ShapeDtypeStruct`` (what outlives a trace)."""
    import equinox as eqx  # lazy: Equinox loads only when an Equinox target is used

    return jax.tree_util.tree_map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype) if eqx.is_array(x) else x, tree)


def _zeros(tree):
    """``tree`` with every ``ShapeDtypeStruct`` of a number type a zero array (inside a trace, where
    Equinox's rules read only the arrays' shapes and dtypes, and XLA drops the zeros)."""
    numeric = lambda x: isinstance(x, jax.ShapeDtypeStruct) and not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)
    return jax.tree_util.tree_map(lambda x: jnp.zeros(x.shape, x.dtype) if numeric(x) else x, tree)


def _inner(x, outer) -> bool:
    """``x`` is a tracer of a transform inside the factory (``eqx.filter_vmap``), not of ``outer``'s trace."""
    return _traced(x) and getattr(x, "_trace", None) is not getattr(outer, "_trace", None)


@dataclasses.dataclass
class _Observed:
    """What a factory built, seen under ``jax.jit`` (every array abstract): the model, each array's
    construction (index, path in the layer) by path, the constructions (their keys removed) and
    whether some were made inside an inner transform."""

    model: Any = None
    state: Any = None
    where: dict = dataclasses.field(default_factory=dict)
    constructions: list = dataclasses.field(default_factory=list)
    inner: bool = False
    lifted: dict = dataclasses.field(default_factory=dict)  # path -> _Made of an array user code made in a vmap


def _observe(factory, make, root) -> tuple[_Observed, list]:
    """The factory traced under ``jax.jit``, returning only the keys its layers were handed: XLA
    removes every array's computation, so nothing large is made. Returns what was seen and the
    keys (concrete), one per recorded construction (None where it had none; stacked for a lifted one)."""
    seen = _Observed()

    def keys(key):
        constructions: list[Construction] = []
        lifted: dict[int, _Made] = {}
        with _watching(constructions, lifted):
            made = make(key)
        _check_built(factory, made)
        model, state = _split_state(made)
        out = _lifted_layers(lifted)
        by_id: dict[int, tuple[int, str]] = {}
        kept = []
        for c in constructions:
            if id(c) not in out and (c.axes or any(_inner(x, key) for x in jax.tree_util.tree_leaves(c.layer))):
                seen.inner = True
                continue
            arrays = [(m.path, m.array) for m in lifted.values() if m.construction is c] if c.axes else _arrays(c.layer)
            for path, value in arrays:
                by_id.setdefault(id(value), (len(kept), path))
            kept.append(c)
        seen.where = {path: by_id.get(id(value)) for path, value in _arrays(model)}
        seen.lifted = {path: lifted[id(value)] for path, value in _arrays(model) if id(value) in lifted}
        seen.model, seen.state = _abstract(model), _abstract(state)
        seen.constructions = [
            dataclasses.replace(
                c, layer=_abstract(c.layer), arguments=_abstract({k: v for k, v in c.arguments.items() if k != "key"})
            )
            for c in kept
        ]
        return [c.arguments.get("key") for c in kept]

    result = jax.jit(keys)(root)
    seen.lifted = {path: dataclasses.replace(m, array=None) for path, m in seen.lifted.items()}  # no tracer kept
    return seen, result


def _fixed_keys(keys: list, again: list) -> set[int]:
    """The constructions handed the same key when the model is built from another root key."""
    same = lambda a, b: (
        a is not None and b is not None and np.array_equal(jax.random.key_data(a), jax.random.key_data(b))
    )
    return {i for i, (a, b) in enumerate(zip(keys, again)) if same(a, b)}


def _rules_at(c: Construction, key) -> dict[str, Rule] | None:
    """Equinox's rules for a construction recorded abstractly, inside a trace (on ``key``), or lifted
    out of the factory's vmaps (on its stacked keys: ``_stacked_rules``)."""
    if c.axes:
        return _stacked_rules(c, key)
    arguments = {**c.arguments, "key": key} if key is not None else c.arguments
    return rules(Construction(_zeros(c.layer), _zeros(arguments)))


def _one_slice(c: Construction) -> Construction:
    """A lifted construction as one of its slices was built (its keys left out)."""
    arguments = {k: v for k, v in c.arguments.items() if k != "key"}
    return dataclasses.replace(c, arguments=arguments, axes=(), sizes=(), lifts=())


def _typed(keys):
    """``keys`` as typed keys (raw ``PRNGKey`` data wrapped), so that one key is one element."""
    if keys is None or jax.dtypes.issubdtype(keys.dtype, jax.dtypes.prng_key):
        return keys
    return jax.random.wrap_key_data(keys)


def _stacked_rules(c: Construction, keys) -> dict[str, Rule] | None:
    """A lifted construction's rules: Equinox's rule on each slice's key, vmapped as the factory's
    vmaps were (each array's slices at their out axes; its keys stacked, outermost vmap first)."""
    one, captured = _one_slice(c), {}

    def slice_rules(k):
        captured["rules"] = found = _rules_at(one, k)
        drawn = {p: r for p, r in (found or {}).items() if not r.computed}
        return {p: r.expected for p, r in drawn.items()}, {p: r.key for p, r in drawn.items()}

    fn = slice_rules
    for axis, n in reversed(tuple(zip(c.axes, c.sizes))):
        fn = jax.vmap(fn, out_axes=(axis, 0), axis_size=n)
    expected, key = fn(_typed(keys))
    found: dict[str, Rule] | None = captured["rules"]
    if found is None:
        return None
    out = {}
    for path, r in found.items():
        if r.computed:
            out[path] = r
            continue
        axes = (*c.axes, *r.stacked)
        out[path] = Rule(
            expected[path],
            key[path],
            f"{r.derivation}, in each slice of {c.transform}",
            r.law,
            stacked=stacked_positions(axes, expected[path].ndim - len(axes)),
            transform=c.transform,
        )
    return out


def _abstract_rules(c: Construction, key) -> tuple[dict[str, Rule] | None, Any]:
    """``(rules, maker)`` of a construction recorded abstractly: each rule's keys concrete and its
    value not made (``expected`` None); ``maker(path)(i)`` makes slice ``i`` of that array."""
    captured: dict[str, Any] = {}

    def keys(k):
        captured["rules"] = found = _rules_at(c, k)
        captured["counts"] = {  # each array's slices
            path: math.prod(r.expected.shape[a] for a in r.stacked)
            for path, r in (found or {}).items()
            if not r.computed
        }
        return {path: r.key for path, r in (found or {}).items() if r.key is not None}

    try:
        concrete = jax.jit(keys)(key)
    except Exception as exc:  # noqa: BLE001 - a layer initcheck cannot derive is that layer's skip
        c.failure = f"initcheck could not apply Equinox's rule ({type(exc).__name__}: {exc})"
        return None, None
    found: dict[str, Rule] | None = captured["rules"]
    if found is None:
        return None, None
    made = {path: dataclasses.replace(r, expected=None, key=concrete.get(path)) for path, r in found.items()}
    one = _one_slice(c) if c.axes else c

    def maker(path: str):
        own = captured["counts"][path] // math.prod(c.sizes)  # the slices of one lifted slice (MLP scan=True)

        def expected(k, i):
            outer, inner = jnp.divmod(i, own)
            slice_key = _typed(k).reshape(-1)[outer] if c.axes and k is not None else k
            r = (_rules_at(one, slice_key) or {})[path]
            return _take_slice(r.expected, r.stacked, inner)

        program = jax.jit(expected)
        return lambda i: program(key, i)

    return made, maker


def _take_slice(value, stacked: tuple[int, ...], i):
    """Slice ``i`` of ``value`` in ``Parameter.slices``' order (``value`` itself when not stacked)."""
    if not stacked:
        return value
    front = jnp.moveaxis(value, stacked, tuple(range(len(stacked))))
    return front.reshape(-1, *front.shape[len(stacked) :])[i]


def record_abstract(
    factory, inputs, rng, kwargs=None, other_rng=None, whole: bool = False
) -> tuple[Any, list[Parameter]]:
    """``(built, values)`` as ``record`` gives them, with no array made: the factory is traced
    under ``jax.jit`` (``_observe``), each value is a ``ShapeDtypeStruct`` and its ``Lazy`` makes it
    from Equinox's rule on its layer's key (``declared``) or by the factory's own program pruned to
    it (``own``; from ``other_rng`` again). ``whole``: the model is made at once by one jitted
    build (it fits), and ``built`` is that model."""
    kwargs = dict(kwargs or {})
    make = lambda key: factory(*inputs, key=key, **kwargs)
    try:
        seen, keys = _observe(factory, make, root_key(rng))
    except NotEquinox:
        raise
    except Exception as exc:
        raise ValueError(
            f"the memory budget's abstract path builds the model under jax.jit, which failed ({type(exc).__name__}: "
            f"{str(exc)[:300]}); give a larger memory= to audit it in memory"
        ) from exc
    fixed = _fixed_keys(keys, _observe(factory, make, root_key(other_rng))[1]) if other_rng is not None else set()
    arrays = lambda made: dict(_arrays(_split_state(made)[0]))
    by_root: dict[bool, Any] = {}
    program = jax.jit(lambda k: arrays(make(k)))

    def own(path: str):
        if whole:

            def from_whole(again=False):
                if again not in by_root:
                    by_root[again] = program(root_key(other_rng if again else rng))
                return by_root[again][path]

            return from_whole
        pruned = jax.jit(lambda k: arrays(make(k))[path])
        return lambda again=False: pruned(root_key(other_rng if again else rng))

    built = seen.model
    state = seen.state
    if whole:
        import equinox as eqx  # lazy: Equinox loads only when an Equinox target is used

        built, state = _split_state(eqx.filter_jit(make)(root_key(rng)))
        by_root[False] = dict(_arrays(built))
    elif state is not None:  # a State's buffers are small: made concretely (XLA prunes the model's arrays)
        state = jax.jit(lambda k: _split_state(make(k))[1])(root_key(rng))
    derived = [_abstract_rules(c, k) for c, k in zip(seen.constructions, keys)]
    unknown = IN_TRANSFORM if seen.inner else USER_MADE
    values = []
    for path, value in _arrays(seen.model):
        where = seen.where.get(path)
        found, declared = None, None
        if where is not None:
            index, inner = where
            made, maker = derived[index]
            rule = (made or {}).get(inner)
            found = (seen.constructions[index], inner, rule)
            declared = maker(inner) if rule is not None and not rule.computed else None
        p = _user_stacked(
            guarded(path, value, "params", functools.partial(_value, path, value, found, unknown)),
            seen.lifted.get(path),
        )
        if where is not None and where[0] in fixed and p.key is not None:
            p = dataclasses.replace(p, key_use=f"{path}: {FIXED_KEY}")
        values.append(dataclasses.replace(p, lazy=Lazy(declared, own(path))))
    if state is not None:
        values += _state_values(seen.model, state)
    return (built if state is None else (built, state)), values


def _layer_text(c: Construction) -> str:
    shown = {
        k: v for k, v in c.arguments.items() if k not in ("key", "dtype") and isinstance(v, int | str | float | bool)
    }
    return f"equinox.nn.{type(c.layer).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


def _value(path: str, value, found: tuple[Construction, str, Rule | None] | None, unknown: str) -> Parameter:
    """One array of the model; ``found``: the construction that made it, its path in that layer and
    Equinox's rule for it (None: no ``equinox.nn`` layer made it, ``unknown`` says why)."""
    if found is None:
        return Parameter(path=path, value=value, declared=None, underived=unknown)
    c, inner, rule = found
    declared = f"{_layer_text(c)}: {inner}"
    if rule is None:
        name = type(c.layer).__name__
        why = equinox_layers.DERIVED.get(
            name, c.failure or f"initcheck has no rule for equinox.nn.{name}'s initialization"
        )
        if name in equinox_layers.DERIVED:
            return Parameter(path=path, value=value, declared=declared, computed=why)
        return Parameter(path=path, value=value, declared=declared, underived=why)
    # drawn_by: Equinox's own sampling, so that its 16-bit failures are marked with its known defect
    return _from_rule(path, value, declared, rule, drawn_by=type(c.layer))


def _from_rule(path: str, value, declared, rule: Rule, collection: str = "params", drawn_by=None) -> Parameter:
    if rule.computed:
        return Parameter(path=path, value=value, declared=declared, collection=collection, computed=rule.computed)
    return Parameter(
        path=path,
        value=value,
        declared=declared,
        collection=collection,
        expected=rule.expected,
        key=rule.key,
        derivation=rule.derivation,
        law=rule.law,
        drawn_by=drawn_by,
        stacked=rule.stacked,
        transform=rule.transform,
    )


def _state_values(model, state) -> list[Parameter]:
    """The arrays of the model's ``State``, by the stateful layer whose ``StateIndex`` holds them
    (see ``_buffer_rule``)."""
    import equinox as eqx  # lazy: Equinox loads only when an Equinox target is used

    stateful = lambda x: isinstance(x, eqx.nn.StatefulLayer)
    out = []
    for where, layer in jax.tree_util.tree_flatten_with_path(model, is_leaf=stateful)[0]:
        if not stateful(layer):
            continue
        name = type(layer).__name__
        for field, index in vars(layer).items():
            if not isinstance(index, eqx.nn.StateIndex):
                continue
            base = f"{path_text(where)}/{field}" if where else field
            leaves = jax.tree_util.tree_leaves(state.get(index))
            for i, value in enumerate(leaves):
                rule = _buffer_rule(name, field, i, value)
                declared = f"equinox.nn.{name}.{field}" if not rule.computed else None
                out.append(_from_rule(f"{base}/{i}" if len(leaves) > 1 else base, value, declared, rule, "state"))
    return out


def _forward(built, parameters: list[Parameter], call_args: tuple | None, call_kwargs: Mapping) -> Forward:
    """An Equinox model called on ``call_args`` (per example, as Equinox layers are), its arrays
    replaced by the traced values; a stateful one (its factory returned ``(model, state)``, as
    ``eqx.nn.make_with_state`` does) is called ``model(*call_args, state)`` and its output taken."""
    if call_args is None:
        raise NoForward(
            "an Equinox model's forward inputs are not its factory's; pass them as call_args=(x,) "
            "(one example: Equinox layers are called per example)"
        )
    model, state = built if isinstance(built, tuple) else (built, None)
    by_path = {p.path: p for p in parameters if p.collection == "params"}
    model = jax.tree_util.tree_map_with_path(  # a model recorded abstractly: the arrays the audit has made
        lambda where, leaf: (
            by_path[path_text(where)].value
            if isinstance(leaf, jax.ShapeDtypeStruct) and path_text(where) in by_path
            else leaf
        ),
        model,
    )
    leaves = Leaves(model, by_path, path_text)

    def fn(values, inputs):
        called = leaves.with_values(values)
        if state is None:
            return called(*inputs, **call_kwargs)
        return called(*inputs, state, **call_kwargs)[0]  # a stateful model: model(x, state) -> (y, state)

    return Forward(fn, leaves.keys, leaves.values, tuple(call_args))


def _is_factory(model) -> bool:
    """An Equinox model class, or a callable that takes ``key`` (and not nnx's ``rngs``)."""
    eqx = sys.modules.get("equinox")
    if eqx is not None and inspect.isclass(model) and issubclass(model, eqx.Module):
        return True
    if not callable(model) or inspect.isclass(model):
        return False
    try:
        parameters = inspect.signature(model).parameters
    except (TypeError, ValueError):
        return False
    return "key" in parameters and "rngs" not in parameters


class Equinox:
    """Equinox: a model class or a factory taking ``key=``, built as ``model(*inputs, key=key)``."""

    name, family, reinitializes = "equinox", "equinox", True
    settings: tuple[Setting, ...] = ()

    def recognises(self, model) -> bool:
        return _is_factory(model)

    def refusal(self, model) -> str | None:
        eqx = sys.modules.get("equinox")
        if eqx is None or not isinstance(model, eqx.Module):
            return None
        return (
            f"model={type(model).__name__}(...) is an Equinox model that is already built; pass a factory "
            "taking key= (e.g. lambda key: eqx.nn.MLP(8, 2, 32, 3, key=key)) or its class with its arguments "
            "as inputs, so that initcheck can watch the construction"
        )

    def describe(self, model) -> str:
        return qualified_name(self.name, model)

    def record(self, target: Model, settings: Mapping[str, Any]) -> Recording:
        require(["equinox"])
        built, parameters = record(target.model, target.args, target.rng, dict(target.kwargs))
        return Recording(parameters, built)

    def record_abstract(
        self, target: Model, settings: Mapping[str, Any], other: Any = None, whole: bool = False
    ) -> Recording:
        require(["equinox"])
        built, parameters = record_abstract(
            target.model, target.args, target.rng, dict(target.kwargs), other_rng=other, whole=whole
        )
        return Recording(parameters, built)

    def forward(self, target: Model, recording: Recording) -> Forward:
        return _forward(recording.built, recording.parameters, target.call_args, target.call_kwargs)

    def values(self, target: Model) -> dict[str, Any]:
        return tree_values("", target.model(*target.args, key=root_key(target.rng), **dict(target.kwargs)))

    def shapes(self, target: Model) -> dict[tuple[str, str], Any]:
        """The model's arrays (a ``State`` the factory returns beside it is not included)."""
        import equinox as eqx  # lazy: Equinox loads only when an Equinox target is used

        made = eqx.filter_eval_shape(
            lambda: target.model(*target.args, key=root_key(target.rng), **dict(target.kwargs))
        )
        if isinstance(made, tuple) and len(made) == 2 and isinstance(made[1], eqx.nn.State):
            made = made[0]
        return {("params", path): leaf for path, leaf in tree_values("", made).items()}

    def key_cause(self) -> str:
        return "both layers were handed the same key (split the key once per layer: jax.random.split(key, n))"

    def ignored_key_cause(self) -> str:
        return IGNORED_KEY


FRAMEWORK = Equinox()


def catalog_entries() -> list[CatalogEntry]:
    """The default initialization of every array the public ``equinox.nn`` layers create."""
    require(["equinox"])
    real = real_dtypes()
    entries = []
    for array in equinox_layers.layer_arrays():
        dtypes = ("float32",) if not array.typed else real
        entries.append(
            CatalogEntry(
                array.id,
                "equinox",
                array.initializer(),
                array.law,
                dtypes=dtypes,
                defects=_defects(array),
                configurations=strategies.equinox_initializers(layers=[array.layer]),
                notes=_notes(array),
                shapes=array.shapes,
            )
        )
    return entries


def _defects(array: equinox_layers.LayerArray) -> tuple:
    """The known defects a layer array's catalog entry shows."""
    if array.layer == "PReLU":
        return (equinox_layers.EQUINOX_PRELU_WEAK_TYPE,)
    return (equinox_layers.EQUINOX_LOW_PRECISION_SAMPLING,) if array.random else ()


def _notes(array: equinox_layers.LayerArray) -> str:
    if not array.typed:
        return f"16-bit dtypes: not checked ({array.layer} takes no dtype: its array is float32)"
    if array.random:
        return "complex dtypes: not checked (Equinox draws the real and imaginary parts independently; no law states that promise)"
    return ""
