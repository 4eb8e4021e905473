"""Equinox's default initialization, one array at a time: each array a public ``equinox.nn`` layer
creates in its constructor, as an initializer ``init(key, shape, dtype)`` that builds the layer in
the configuration that gives ``shape`` (and ``dtype``, from ``key``) and returns that array, with
the law Equinox's code gives it (written from equinox 0.13.8's sources, not imported):

* ``Linear``, ``Conv*``, ``ConvTranspose*``, the projections of ``MultiheadAttention`` and ``MLP``:
  U(-lim, lim), lim = 1/sqrt(fan), fan = the weight's ``in`` axis 1 times its window (PyTorch's
  layout ``(out, in/groups, *window)``), i.e. ``VarianceScaling(1/3, "fan_in", "uniform",
  in_axis=1, out_axis=0)``; the bias from the same ``lim``.
* ``GRUCell`` and ``LSTMCell``: U(-lim, lim), lim = 1/sqrt(hidden_size), for every array.
* ``Embedding``: N(0, 1). Norm layers: weight 1, bias 0. ``PReLU``: slope 0.25.

Arrays Equinox derives from other arrays rather than draws (``WeightNorm.g``, ``SpectralNorm``'s
power-iteration vectors) have no law of their own and are listed in ``DERIVED``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Callable

from hypothesis import strategies as st

from initcheck import _property_registry as groups
from initcheck import laws
from initcheck._defects import KnownDefect
from initcheck._frameworks import jax_laws

TORCH_LAYOUT_UNIFORM = dict(in_axis=1, out_axis=0)  # (out, in/groups, *window)
CHANNELS = (1, 3, 8, 16, 32)
WIDTHS = (1, 4, 16, 64, 128)
WINDOWS = (1, 2, 3, 5)

DERIVED = {
    "WeightNorm": "g is the norm of the wrapped layer's weight (a function of it, not a draw)",
    "SpectralNorm": "u and v are normal draws refined by power iterations on the wrapped weight",
    "BatchNorm (state)": "the running mean and variance are zeros and ones in the layer's State",
}


def uniform_fan(**fans) -> laws.Law:
    """Equinox's default weight law, U(-1/sqrt(fan), 1/sqrt(fan)): variance 1/(3 fan), the fan
    read by ``fans`` (the catalog and the audit both use this one)."""
    return laws.VarianceScaling(1 / 3, "fan_in", "uniform", **fans)


def uniform_within(lim: float) -> laws.Law:
    """Equinox's ``default_init`` with a known bound: U(-lim, lim)."""
    return laws.Uniform(-lim, lim)


def _bias(fan: int) -> laws.Law:
    return uniform_within(1 / math.sqrt(fan))


@dataclasses.dataclass(frozen=True)
class LayerArray:
    """The array at ``path`` of ``equinox.nn.<layer>(**options, **build(shape))``."""

    layer: str
    path: str
    build: Callable[[tuple], dict]
    law: laws.Law
    shapes: st.SearchStrategy
    options: dict = dataclasses.field(default_factory=dict)
    keyed: bool = True  # the constructor takes key= (norm layers and PReLU do not)
    typed: bool = True  # the constructor takes dtype= (PReLU does not)
    random: bool = True

    @property
    def id(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"equinox.nn.{self.layer}({args}).{self.path}"

    def __call__(self, key, shape, dtype):
        import equinox as eqx  # lazy: Equinox loads only when an Equinox target is used

        shape = tuple(shape)
        try:
            kwargs = {**self.options, **self.build(shape)}
        except IndexError:
            raise ValueError(f"{self.id} has no configuration that makes shape={shape}") from None
        if self.typed:
            kwargs["dtype"] = dtype
        if self.keyed:
            kwargs["key"] = key
        array = array_at(getattr(eqx.nn, self.layer)(**kwargs), self.path)
        if array.shape != shape:  # e.g. a gate count that does not divide shape[0]
            raise ValueError(f"{self.id} cannot make shape={shape}: {self.layer}(**{kwargs!r}) makes {array.shape}")
        return array

    def initializer(self) -> Callable:
        """``self`` as a plain function named by its id (for reports and reproductions)."""

        def init(key, shape, dtype):
            return self(key, shape, dtype)

        init.__initcheck_name__ = self.id  # type: ignore[attr-defined]
        return init


def array_at(layer, path: str):
    """``layer.query_proj.weight`` or ``layer.layers[0].weight`` from a path like ``layers[0].weight``."""
    value = layer
    for name, index in re.findall(r"([A-Za-z_]\w*)(?:\[(-?\d+)\])?", path):
        value = getattr(value, name)
        if index:
            value = value[int(index)]
    return value


def _cell_build(shape, gates: int, with_input: bool) -> dict:
    """RNN cells stack their ``gates`` along axis 0: (gates * hidden_size, input_size or hidden_size)."""
    return {"hidden_size": shape[0] // gates, **({"input_size": shape[1]} if with_input else {})}


def _sides(*choices) -> st.SearchStrategy:
    return st.tuples(*(st.sampled_from(c) for c in choices))


def _conv(d: int) -> st.SearchStrategy:
    return _sides(CHANNELS, CHANNELS, *([WINDOWS] * d))


def _conv_build(shape) -> dict:
    """Conv and ConvTranspose weights are ``(out_channels, in_channels, *kernel_size)``."""
    return {"in_channels": shape[1], "out_channels": shape[0], "kernel_size": shape[2:]}


def layer_arrays() -> list[LayerArray]:
    """Every array the public layers of ``equinox.nn`` draw or set in their constructors."""
    matrix = _sides(WIDTHS, WIDTHS)
    vector = _sides(WIDTHS)
    items = [
        LayerArray(
            "Linear",
            "weight",
            lambda s: {"in_features": s[1], "out_features": s[0]},
            uniform_fan(**TORCH_LAYOUT_UNIFORM),
            matrix,
        ),
        LayerArray("Linear", "bias", lambda s: {"out_features": s[0]}, _bias(64), vector, {"in_features": 64}),
    ]
    for d in (1, 2, 3):
        for transpose in (False, True):
            layer = f"Conv{'Transpose' if transpose else ''}{d}d"
            items.append(LayerArray(layer, "weight", _conv_build, uniform_fan(**TORCH_LAYOUT_UNIFORM), _conv(d)))
    items += [
        LayerArray(
            "Conv2d",
            "bias",
            lambda s: {"out_channels": s[0]},
            _bias(16 * 9),
            _sides(CHANNELS).map(lambda s: (s[0], 1, 1)),
            {"in_channels": 16, "kernel_size": 3},
        ),
        LayerArray(
            "Embedding", "weight", lambda s: {"num_embeddings": s[0], "embedding_size": s[1]}, laws.Normal(1.0), matrix
        ),
        LayerArray(
            "MLP",
            "layers[0].weight",
            lambda s: {"in_size": s[1], "width_size": s[0]},
            uniform_fan(**TORCH_LAYOUT_UNIFORM),
            matrix,
            {"out_size": 2, "depth": 2},
        ),
        LayerArray(
            "MLP",
            "layers[-1].weight",
            lambda s: {"out_size": s[0], "width_size": s[1]},
            uniform_fan(**TORCH_LAYOUT_UNIFORM),
            matrix,
            {"in_size": 2, "depth": 2},
        ),
        LayerArray(
            "MultiheadAttention",
            "query_proj.weight",
            lambda s: {"query_size": s[1], "qk_size": s[0]},
            uniform_fan(**TORCH_LAYOUT_UNIFORM),
            matrix,
            {"num_heads": 1},
        ),
        LayerArray(
            "MultiheadAttention",
            "key_proj.weight",
            lambda s: {"key_size": s[1], "qk_size": s[0]},
            uniform_fan(**TORCH_LAYOUT_UNIFORM),
            matrix,
            {"num_heads": 1, "query_size": 8},
        ),
        LayerArray(
            "MultiheadAttention",
            "value_proj.weight",
            lambda s: {"value_size": s[1], "vo_size": s[0]},
            uniform_fan(**TORCH_LAYOUT_UNIFORM),
            matrix,
            {"num_heads": 1, "query_size": 8},
        ),
        LayerArray(
            "MultiheadAttention",
            "output_proj.weight",
            lambda s: {"output_size": s[0], "vo_size": s[1]},
            uniform_fan(**TORCH_LAYOUT_UNIFORM),
            matrix,
            {"num_heads": 1, "query_size": 8},
        ),
    ]
    for cell, gates, fans in (("GRUCell", 3, "equinox_gru"), ("LSTMCell", 4, "equinox_lstm")):
        stacked = _sides(WIDTHS, WIDTHS).map(lambda s, g=gates: (g * s[0], s[1]))
        square = _sides(WIDTHS).map(lambda s, g=gates: (g * s[0], s[0]))
        items += [
            LayerArray(
                cell,
                "weight_ih",
                functools.partial(_cell_build, gates=gates, with_input=True),
                uniform_fan(fans=fans),
                stacked,
            ),
            LayerArray(
                cell,
                "weight_hh",
                functools.partial(_cell_build, gates=gates, with_input=False),
                uniform_fan(fans=fans),
                square,
                {"input_size": 3},
            ),
            LayerArray(
                cell,
                "bias",
                functools.partial(_cell_build, gates=gates, with_input=False),
                uniform_fan(fans=fans),
                _sides(WIDTHS).map(lambda s, g=gates: (g * s[0],)),
                {"input_size": 3},
            ),
        ]
    items.append(
        LayerArray(
            "GRUCell",
            "bias_n",
            lambda s: {"hidden_size": s[0]},
            uniform_fan(fans="equinox_hidden"),
            vector,
            {"input_size": 3},
        )
    )
    constant = dict(keyed=False, random=False)
    for layer, build in (
        ("LayerNorm", lambda s: {"shape": s}),
        ("RMSNorm", lambda s: {"shape": s}),
        ("GroupNorm", lambda s: {"channels": s[0]}),
        ("BatchNorm", lambda s: {"input_size": s[0]}),
    ):
        options = (
            {"groups": 1}
            if layer == "GroupNorm"
            else {"axis_name": "batch", "mode": "batch"}
            if layer == "BatchNorm"
            else {}
        )
        shapes = _sides(WIDTHS, WIDTHS) if layer in ("LayerNorm", "RMSNorm") else vector
        items += [
            LayerArray(layer, "weight", build, laws.Constant(1.0), shapes, options, **constant),
            LayerArray(layer, "bias", build, laws.Constant(0.0), shapes, options, **constant),
        ]
    items.append(
        LayerArray(
            "PReLU",
            "negative_slope",
            lambda s: {},
            laws.Constant(0.25),
            st.just(()),
            keyed=False,
            typed=False,
            random=False,
        )
    )
    return items


EQUINOX_LOW_PRECISION_SAMPLING = dataclasses.replace(
    jax_laws.LOW_PRECISION_SAMPLING,
    name="equinox-low-precision-sampling",
    package="equinox",
    last_seen="0.13.8",
    summary="Equinox's layers draw with jax.random in the layer's dtype and inherit its 16-bit "
    "coarseness: " + jax_laws.LOW_PRECISION_SAMPLING.summary,
    reference="https://github.com/patrick-kidger/equinox/blob/v0.13.8/equinox/nn/_misc.py "
    "(default_init: jax.random.uniform(key, shape, dtype, ...)); Embedding: jax.random.normal",
)
EQUINOX_PRELU_WEAK_TYPE = KnownDefect(
    "equinox-prelu-weak-type",
    "equinox",
    "0.13.8",
    groups.WEAK_TYPE,
    ("float32",),
    "equinox.nn.PReLU stores its slope as jnp.asarray(init_alpha): a Python float gives a weak-typed "
    "float32, which promotes to the other operand's dtype and makes jitted steps recompile next to "
    "bfloat16 inputs",
    "https://github.com/patrick-kidger/equinox/blob/v0.13.8/equinox/nn/_activations.py "
    "(PReLU.__init__: self.negative_slope = jnp.asarray(init_alpha))",
)
SAMPLING_DEFECTS = (EQUINOX_LOW_PRECISION_SAMPLING,)


def owns(module: str) -> bool:
    """An initializer defined in ``module`` is Equinox's (a layer's class stands for its sampling)."""
    return module.startswith("equinox")
