"""Audit a Flax linen Module: watch ``init`` create each parameter, derive its key with
:mod:`initcheck.derivation`, and apply the declared initializer to that key."""

from __future__ import annotations

import contextlib
import dataclasses
import math

import jax

from initcheck import derivation, laws
from initcheck.audit._declared import declared_law
from initcheck.audit._parameter import Parameter


@dataclasses.dataclass
class _Draw:
    path: tuple[str, ...]           # scope path of the module
    stream: str                     # the stream asked for
    param: str | None = None        # parameter name, for a draw that created a parameter
    init: object = None
    args: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)
    key: object = None              # the key Flax handed over
    module: object = None


@contextlib.contextmanager
def _watching(draws: list[_Draw]):
    """Record every new parameter and every ``make_rng`` of every module, in order."""
    import flax.linen as nn

    param, make_rng = nn.Module.param, nn.Module.make_rng

    def watched_param(self, name, init_fn, *init_args, unbox=True, **init_kwargs):
        if self.has_variable("params", name):  # exists already: Flax draws no key
            return param(self, name, init_fn, *init_args, unbox=unbox, **init_kwargs)
        draw = _Draw(tuple(self.path), "params", name, init_fn, init_args, init_kwargs, module=self)

        def spy(key, *args, **kwargs):
            draw.key = key
            return init_fn(key, *args, **kwargs)

        value = param(self, name, spy, *init_args, unbox=unbox, **init_kwargs)
        draws.append(draw)
        return value

    def watched_make_rng(self, name="params"):
        key = make_rng(self, name)
        draws.append(_Draw(tuple(self.path), name, key=key))
        return key

    nn.Module.param, nn.Module.make_rng = watched_param, watched_make_rng
    try:
        yield
    finally:
        nn.Module.param, nn.Module.make_rng = param, make_rng


def _tuple(x) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _dense_general(module, shape) -> tuple[laws.Law | None, str]:
    """``nn.DenseGeneral``'s kernel is ``batch + inputs + features``; its docs make the batch dims
    batch axes of the kernel, but it calls ``kernel_init`` on the kernel reshaped to
    ``(prod(batch) * prod(inputs), prod(features))``, so the batch dims count in fan_in."""
    base = declared_law(module.kernel_init)
    n_batch, n_feat = len(_tuple(module.batch_dims)), len(_tuple(module.features))
    n_in = len(shape) - n_batch - n_feat
    if not isinstance(base, laws.VarianceScaling) or base.fans != "jax":
        return base, ""
    axes = lambda a, b: tuple(range(a, b))  # noqa: E731
    law = laws.VarianceScaling(base.scale, base.mode, base.distribution, in_axis=axes(n_batch, n_batch + n_in),
                               out_axis=axes(n_batch + n_in, len(shape)), batch_axis=axes(0, n_batch))
    if not n_batch:
        return law, ""
    batch, inputs = shape[:n_batch], shape[n_batch:n_batch + n_in]
    flat = (math.prod(batch + inputs), math.prod(shape[n_batch + n_in:]))
    fan_flax, _ = base.fan(flat)
    fan_doc, _ = law.fan(shape)
    ratio = base.variance(flat) / law.variance(shape)
    hint = (f"flax.linen.DenseGeneral(batch_dims={module.batch_dims!r}) calls kernel_init on the kernel "
            f"{shape} reshaped to {flat}, so it counts the batch dims {batch} in the fan: fan_in = "
            f"{fan_flax:g} instead of {fan_doc:g} for the inputs {inputs} that the layer's kernel layout "
            f"(batch, inputs, features) implies; the variance is x{ratio:.4g} the promised one")
    return law, hint


def _law(draw: _Draw, shape) -> tuple[laws.Law | None, str]:
    import flax.linen as nn

    if isinstance(draw.module, nn.DenseGeneral):  # calls wrappers of kernel_init and bias_init
        if draw.param == "kernel":
            return _dense_general(draw.module, shape)
        return declared_law(draw.module.bias_init), ""
    return declared_law(draw.init), ""


def record(module, inputs, rng, *, fix_separator: bool | None = None, method=None) -> list[Parameter]:
    """Run ``module.init(rng, *inputs)`` eagerly and return every parameter with its derived key."""
    from flax import config
    from flax.core import meta

    fix = bool(config.flax_fix_rng_separator) if fix_separator is None else fix_separator
    if isinstance(rng, int):
        rng = jax.random.key(rng)
    roots = derivation.linen_roots(rng)
    draws: list[_Draw] = []
    with _watching(draws):
        variables = module.init(rng, *inputs, **({} if method is None else {"method": method}))
    params = meta.unbox(variables.get("params", {}))
    counters: dict[tuple, int] = {}
    parameters = []
    for draw in draws:
        stream = derivation.linen_stream(roots, draw.stream)
        counter = counters[draw.path, stream] = counters.get((draw.path, stream), 0) + 1
        if draw.param is None:
            continue
        key = derivation.linen_key(roots[stream], draw.path, counter, fix_separator=fix)
        data = derivation.linen_hash_input(draw.path, counter, fix_separator=fix)
        path = "/".join((*draw.path, draw.param))
        value = _lookup(params, (*draw.path, draw.param))
        expected = meta.unbox(draw.init(key, *draw.args, **draw.kwargs))
        law, hint = _law(draw, tuple(jax.numpy.shape(value)))
        if isinstance(draw.key, jax.core.Tracer) and jax.numpy.shape(value) != jax.numpy.shape(expected):
            parameters.append(Parameter(path=path, value=value, declared=draw.init, law=law, hint=hint,
                                        underived="created inside a lifted transform that splits keys "
                                                  "(nn.vmap/nn.scan), which initcheck does not derive"))
            continue
        problem = None
        if not isinstance(draw.key, jax.core.Tracer) and derivation.key_bytes(draw.key) != derivation.key_bytes(key):
            problem = (f"Flax handed {path} a different key than the linen rule gives "
                       f"(make_rng #{counter} of stream {stream!r} in scope {'/'.join(draw.path) or '<root>'})")
        parameters.append(Parameter(
            path=path, value=value, declared=draw.init, expected=expected, key=key,
            derivation=f"fold_in({stream}, sha1({data!r})[:4]) (make_rng #{counter} in scope "
                       f"{'/'.join(draw.path) or '<root>'})",
            problem=problem, law=law, hint=hint))
    return parameters


def _lookup(tree, path):
    for part in path:
        tree = tree[part]
    return tree

