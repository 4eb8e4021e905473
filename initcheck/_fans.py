"""Fan computation, written from the definitions (not imported from the frameworks).

A weight of shape ``s`` maps ``fan_in`` inputs to ``fan_out`` outputs:

* JAX convention: ``fan_in = prod(s[in_axis]) * r`` and ``fan_out = prod(s[out_axis]) * r``
  where the receptive field ``r = prod(s) / (prod(s[in_axis]) * prod(s[out_axis]) * prod(s[batch_axis]))``
  (every axis that is neither input, output nor batch is a kernel spatial axis).
* Haiku convention: ``()`` -> (1, 1); ``(n,)`` -> (n, n); ``(a, b)`` -> (a, b); higher ranks are
  convolution kernels ``(..., in, out)`` with ``r = prod(s[:-2])``, unless ``fan_in_axes`` names the
  input axes, in which case ``fan_out`` is the product of all the other axes.
* Equinox's recurrent cells: U(+-1/sqrt(hidden_size)) with ``hidden_size = shape[0] / gates``
  (the gates are stacked along the first axis), so fan_in = fan_out = hidden_size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Axes = int | Sequence[int]


def _as_axes(axes: Axes) -> tuple[int, ...]:
    return (axes,) if isinstance(axes, int) else tuple(axes)


def _normalize(axes: tuple[int, ...], rank: int, name: str) -> tuple[int, ...]:
    out = []
    for axis in axes:
        if not -rank <= axis < rank:
            raise ValueError(
                f"{name}={axis} is out of range for a {rank}-D shape; "
                f"use an axis in [{-rank}, {rank - 1}] or a shape with more dimensions"
            )
        out.append(axis % rank)
    return tuple(out)


def jax_fans(
    shape: Sequence[int], in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = ()
) -> tuple[float, float]:
    """(fan_in, fan_out) under JAX's convention; ValueError when an axis does not exist."""
    rank = len(shape)
    ins = _normalize(_as_axes(in_axis), rank, "in_axis")
    outs = _normalize(_as_axes(out_axis), rank, "out_axis")
    batches = _normalize(_as_axes(batch_axis), rank, "batch_axis")
    named = ins + outs + batches
    if len(set(named)) != len(named):
        # JAX does not refuse an axis named twice (in_axis=-1, out_axis=0 on a 1-D shape): it divides
        # prod(shape) by each role's size, so the axis counts against the receptive field twice.
        sizes = [math.prod(shape[i] for i in axes) for axes in (ins, outs, batches)]
        if 0 in sizes:
            raise ValueError(f"a zero-size axis in the overlapping in/out/batch axes of {tuple(shape)}")
        receptive = math.prod(shape) / sizes[0] / sizes[1] / sizes[2]
        return float(sizes[0] * receptive), float(sizes[1] * receptive)
    receptive = math.prod(s for i, s in enumerate(shape) if i not in named)
    fan_in = math.prod(shape[i] for i in ins) * receptive
    fan_out = math.prod(shape[i] for i in outs) * receptive
    return float(fan_in), float(fan_out)


def haiku_fans(shape: Sequence[int], fan_in_axes: Sequence[int] | None = None) -> tuple[float, float]:
    """(fan_in, fan_out) under Haiku's convention, defined for every rank."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    if len(shape) == 2:
        return float(shape[0]), float(shape[1])
    if fan_in_axes is not None:
        ins = _normalize(tuple(fan_in_axes), len(shape), "fan_in_axes")
        fan_in = math.prod(shape[i] for i in ins)
        fan_out = math.prod(s for i, s in enumerate(shape) if i not in ins)
        return float(fan_in), float(fan_out)
    receptive = math.prod(shape[:-2])
    return float(shape[-2] * receptive), float(shape[-1] * receptive)


def fan_denominator(mode: str, fan_in: float, fan_out: float) -> float:
    """The ``n`` of ``variance = scale / n`` for a fan mode."""
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    if mode == "fan_avg":
        return (fan_in + fan_out) / 2
    if mode == "fan_geo_avg":
        return math.sqrt(fan_in * fan_out)
    raise ValueError(f"mode={mode!r} is not a fan mode; use one of fan_in, fan_out, fan_avg, fan_geo_avg")


def haiku_input_size_fans(shape: Sequence[int]) -> tuple[float, float]:
    """Haiku's UniformScaling: the input size is prod(shape[:-1])."""
    return float(math.prod(shape[:-1])), float(shape[-1] if shape else 1)


def stacked_gates_fans(shape: Sequence[int], gates: int) -> tuple[float, float]:
    """Equinox's GRUCell (3 gates) and LSTMCell (4): hidden_size = shape[0] / gates."""
    if len(shape) == 0:
        raise ValueError("shape=() has no gate axis; an Equinox RNN cell's arrays are 1-D or 2-D")
    hidden = shape[0] / gates
    return hidden, hidden


# Named rules whose fans are the leading axis over a gate count (see stacked_gates_fans).
STACKED_GATES = {"equinox_gru": 3, "equinox_lstm": 4, "equinox_hidden": 1}
