"""Audit a Flax nnx Module class or factory: build it with ``nnx.Rngs`` made from ``rng``, watch
each stream call and each ``*_init`` argument of nnx layers (``kernel_init``, ``bias_init``,
``scale_init``, ``embedding_init``, ...), derive every key with :mod:`initcheck.derivation`."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
from collections.abc import Mapping

from initcheck import derivation
from initcheck.audit._declared import declared_law
from initcheck.audit._parameter import Parameter


@dataclasses.dataclass
class _Call:
    module: object
    name: str            # parameter name: the argument's name without "_init"
    init: object
    args: tuple
    kwargs: dict
    key: object
    value: object


def _layer_classes() -> list[type]:
    """nnx Module classes whose own ``__init__`` takes initializer arguments (``*_init``)."""
    from flax import nnx

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
        if init is not None and any(p.endswith("_init") for p in inspect.signature(init).parameters):
            out.append(cls)
    return out


@contextlib.contextmanager
def _watching(calls: list[_Call], draws: list[tuple[object, object]]):
    from flax import nnx

    def spy_on(module, name, init):
        init = getattr(init, "__initcheck_spied__", init)  # a layer passing its init to a sub-layer

        @functools.wraps(init)
        def spy(key, *args, **kwargs):
            value = init(key, *args, **kwargs)
            calls.append(_Call(module, name, init, args, kwargs, key, value))
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

    def watched_call(self):
        key = stream_call(self)
        draws.append((self, key))
        return key

    patched = {cls: watch(cls) for cls in _layer_classes()}
    for cls, (_, init) in patched.items():
        cls.__init__ = init
    nnx.RngStream.__call__ = watched_call
    try:
        yield
    finally:
        nnx.RngStream.__call__ = stream_call
        for cls, (original, _) in patched.items():
            cls.__init__ = original


def _seeds(rng) -> dict:
    return dict(rng) if isinstance(rng, Mapping) else {"default": rng}


def _check_factory(factory) -> None:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return  # no signature to read (a builtin): let the call speak
    if "rngs" not in parameters and not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        raise TypeError(f"model={getattr(factory, '__qualname__', factory)!r} takes no rngs= argument; an nnx "
                        "model is audited as a Module class or a factory called as model(*inputs, rngs=...)")


def record(factory, inputs, rng) -> tuple[object, list[Parameter]]:
    """Build ``factory(*inputs, rngs=nnx.Rngs(...))`` and return the model and its parameters."""
    from flax import nnx

    _check_factory(factory)
    seeds = _seeds(rng)
    rngs = nnx.Rngs(**seeds)
    roots = {tag: derivation.nnx_root(seed) for tag, seed in seeds.items()}
    streams = {id(rngs[tag]): tag for tag in seeds}
    calls: list[_Call] = []
    draws: list[tuple[object, object]] = []
    with _watching(calls, draws):
        model = factory(*inputs, rngs=rngs)
    if not isinstance(model, nnx.Module):
        raise TypeError(f"model: {factory!r} returned {type(model).__name__}, not an nnx.Module; pass an nnx "
                        "Module class or a factory that takes rngs= and returns one")
    module_paths = {id(node): path for path, node in nnx.iter_graph(model) if isinstance(node, nnx.Module)}
    counts: dict[int, int] = {}
    index = []  # (stream tag or None, count within the stream, key bytes) of every draw, in order
    for stream, key in draws:
        n = counts[id(stream)] = counts.get(id(stream), -1) + 1
        index.append((streams.get(id(stream)), n, derivation.key_bytes(key)))
    parameters, seen = [], set()
    for call in calls:
        prefix = module_paths.get(id(call.module))
        if prefix is None:
            continue  # a layer built during construction but not kept in the model
        path = "/".join(str(p) for p in (*prefix, call.name))
        attribute = getattr(call.module, call.name, None)
        value = attribute[...] if isinstance(attribute, nnx.Variable) else call.value
        seen.add(path)
        parameters.append(_parameter(path, call, value, index, roots))
    for path, node in nnx.iter_graph(model):
        name = "/".join(str(p) for p in path)
        if isinstance(node, nnx.Param) and name not in seen:
            parameters.append(Parameter(path=name, value=node[...], declared=None,
                                        unaudited="created without an initializer argument (*_init) of an nnx "
                                                  "layer, so initcheck cannot know its initializer or key"))
    return model, parameters


def _parameter(path, call: _Call, value, index, roots) -> Parameter:
    law = declared_law(call.init)
    actual = derivation.key_bytes(call.key)
    drawn = [(tag, n) for tag, n, data in reversed(index) if data == actual]
    if not drawn:
        return Parameter(path=path, value=value, declared=call.init, law=law,
                         problem=f"the key passed to {call.name}_init is not a draw of any stream of the "
                                 "model's nnx.Rngs")
    tag, n = drawn[0]
    if tag is None:
        return Parameter(path=path, value=value, declared=call.init, law=law, expected=call.value, key=call.key,
                         derivation="a draw of a forked or split stream",
                         underived="its key comes from a forked or split nnx stream, which initcheck does not derive")
    key = derivation.nnx_key(roots[tag], n)
    problem = None
    if derivation.key_bytes(key) != actual:
        problem = f"nnx handed {call.name}_init a different key than fold_in({tag}, {n})"
    return Parameter(path=path, value=value, declared=call.init, law=law, key=key,
                     expected=call.init(key, *call.args, **call.kwargs),
                     derivation=f"fold_in({tag}, {n}) (call #{n} of stream {tag!r})", problem=problem)
