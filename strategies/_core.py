"""Shapes, dtypes, keys, fan modes and axis layouts."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

SIDES = (1, 2, 3, 4, 5, 8, 16, 32, 64, 128, 256)
"""The side lengths shapes are drawn from: few distinct shapes, so a run compiles few programs."""
KERNEL_SIDES = (1, 2, 3, 5)
PRNG_IMPLS = ("threefry2x32", "rbg", "unsafe_rbg")
FAN_MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")


def _check_dims(min_dims: int, max_dims: int) -> None:
    if min_dims < 0:
        raise InvalidArgument(f"min_dims={min_dims} must be >= 0")
    if min_dims > max_dims:
        raise InvalidArgument(f"min_dims={min_dims} is larger than max_dims={max_dims}; raise max_dims")


def _check_positive(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"{name}={value!r} must be a positive int")


def weight_shapes(
    *, min_dims: int = 2, max_dims: int = 4, sides=SIDES, max_elements: int = 2**16
) -> st.SearchStrategy[tuple[int, ...]]:
    """Non-empty weight shapes with `min_dims..max_dims` axes.

    Shrinks towards fewer axes and the first sides listed.

    Args:
        min_dims: The fewest axes, >= 0.
        max_dims: The most axes, >= `min_dims`.
        sides (Sequence[int]): The side lengths to draw from, positive ints.
        max_elements: The most elements a shape may have.

    Returns:
        A strategy of shape tuples.

    Raises:
        InvalidArgument: A bound or `sides` is invalid, or `max_elements` is too small for
            `min_dims`.

    Examples:
        >>> from initcheck import strategies as ics
        >>> ics.weight_shapes(min_dims=2, max_dims=2).example()  # doctest: +SKIP
        (64, 3)
    """
    _check_dims(min_dims, max_dims)
    _check_positive("max_elements", max_elements)
    sides = tuple(sides)
    if not sides or any(not isinstance(s, int) or s < 1 for s in sides):
        raise InvalidArgument(f"sides={sides!r} must be a non-empty sequence of positive ints")
    if min(sides) ** min_dims > max_elements:
        raise InvalidArgument(f"max_elements={max_elements} is too small for min_dims={min_dims} with sides {sides}")
    side = st.sampled_from(sides)
    return (
        st.integers(min_dims, max_dims)
        .flatmap(lambda rank: st.tuples(*[side] * rank))
        .filter(lambda s: math.prod(s) <= max_elements)
    )


def conv_shapes(
    *, spatial_dims: int = 2, kernel_sides=KERNEL_SIDES, channel_sides=SIDES, max_elements: int = 2**16
) -> st.SearchStrategy[tuple[int, ...]]:
    """Convolution kernels `(*spatial, in, out)` with at most `max_elements` elements.

    Args:
        spatial_dims: The number of spatial axes, 1, 2 or 3.
        kernel_sides (Sequence[int]): The spatial side lengths to draw from.
        channel_sides (Sequence[int]): The channel counts to draw from.
        max_elements: The most elements a kernel may have.

    Returns:
        A strategy of shape tuples.

    Raises:
        InvalidArgument: `spatial_dims` is not 1, 2 or 3, or `max_elements` is not a positive int.
    """
    if spatial_dims not in (1, 2, 3):
        raise InvalidArgument(f"spatial_dims={spatial_dims!r} must be 1, 2 or 3")
    _check_positive("max_elements", max_elements)
    spatial = st.tuples(*[st.sampled_from(tuple(kernel_sides))] * spatial_dims)
    channels = st.tuples(st.sampled_from(tuple(channel_sides)), st.sampled_from(tuple(channel_sides)))
    return st.tuples(spatial, channels).map(lambda sc: sc[0] + sc[1]).filter(lambda s: math.prod(s) <= max_elements)


def edge_shapes() -> st.SearchStrategy[tuple[int, ...]]:
    """0-D, 1-D and zero-size shapes: where fan computations and QR break.

    Returns:
        A strategy of shape tuples.
    """
    return st.sampled_from([(), (1,), (7,), (0,), (0, 5), (5, 0), (2, 0, 3), (1, 1)])


def float_dtypes(*, low_precision: bool = True, x64: bool | None = None) -> st.SearchStrategy:
    """float32, plus bfloat16 and float16 if `low_precision`, plus float64 when x64 is on.

    Shrinks towards float32.

    Args:
        low_precision: Include bfloat16 and float16.
        x64: Include float64 (default: when `jax_enable_x64` is set).

    Returns:
        A strategy of numpy dtypes.
    """
    if x64 is None:
        x64 = bool(jax.config.jax_enable_x64)
    dtypes = [jnp.float32] + ([jnp.bfloat16, jnp.float16] if low_precision else []) + ([jnp.float64] if x64 else [])
    return st.sampled_from([jnp.dtype(d) for d in dtypes])


def complex_dtypes(*, x64: bool | None = None) -> st.SearchStrategy:
    """complex64, plus complex128 when x64 is on.

    Args:
        x64: Include complex128 (default: when `jax_enable_x64` is set).

    Returns:
        A strategy of numpy dtypes.
    """
    if x64 is None:
        x64 = bool(jax.config.jax_enable_x64)
    return st.sampled_from([jnp.dtype(d) for d in ([jnp.complex64] + ([jnp.complex128] if x64 else []))])


def keys(*, impls=PRNG_IMPLS, typed: bool | None = None) -> st.SearchStrategy[jax.Array]:
    """PRNG keys: legacy raw keys (`jax.random.PRNGKey`) or typed ones (`jax.random.key`).

    For key-handling properties only: never search seeds for a p-value.

    Args:
        impls (Sequence[str]): The PRNG implementations, a non-empty subset of
            `("threefry2x32", "rbg", "unsafe_rbg")`.
        typed: Typed keys only (True), raw keys only (False), or both (None).

    Returns:
        A strategy of keys.

    Raises:
        InvalidArgument: `impls` is empty or names an unknown implementation.
    """
    impls = tuple(impls)
    unknown = set(impls) - set(PRNG_IMPLS)
    if not impls or unknown:
        raise InvalidArgument(f"impls={impls!r} must be a non-empty subset of {PRNG_IMPLS}")
    kinds = st.just(typed) if typed is not None else st.booleans()

    def make(args):
        seed, impl, as_typed = args
        return jax.random.key(seed, impl=impl) if as_typed else jax.random.PRNGKey(seed, impl=impl)

    return st.tuples(st.integers(0, 2**32 - 1), st.sampled_from(impls), kinds).map(make)


def fan_modes(*, geo: bool = True) -> st.SearchStrategy[str]:
    """Fan modes of variance scaling: `fan_in`, `fan_out`, `fan_avg`, and `fan_geo_avg` (JAX only) when `geo`.

    Args:
        geo: Include `fan_geo_avg`.

    Returns:
        A strategy of mode names.
    """
    return st.sampled_from(FAN_MODES if geo else FAN_MODES[:3])


def axis_layouts(shape: tuple[int, ...], *, batch: bool = True) -> st.SearchStrategy[dict]:
    """`dict(in_axis=..., out_axis=..., batch_axis=...)` consistent with `shape`.

    Distinct axes, each an int or a tuple, negative or not.

    Args:
        shape: The shape, with at least 2 axes.
        batch: Draw batch axes too (else `batch_axis=()`).

    Returns:
        A strategy of keyword-argument dicts for JAX's `variance_scaling`.

    Raises:
        InvalidArgument: `shape` has fewer than 2 axes.
    """
    rank = len(shape)
    if rank < 2:
        raise InvalidArgument(f"shape={shape!r} has {rank} axes; axis layouts need at least 2")

    def spell(axes: list[int], draw) -> int | tuple[int, ...]:
        axes = [a - rank if draw(st.booleans()) else a for a in axes]
        return axes[0] if len(axes) == 1 and draw(st.booleans()) else tuple(axes)

    @st.composite
    def layouts(draw):
        order = draw(st.permutations(range(rank)))
        n_in = draw(st.integers(1, rank - 1))
        n_out = draw(st.integers(1, rank - n_in))
        n_batch = draw(st.integers(0, rank - n_in - n_out)) if batch else 0
        ins, outs = sorted(order[:n_in]), sorted(order[n_in : n_in + n_out])
        batches = sorted(order[n_in + n_out : n_in + n_out + n_batch])
        return {"in_axis": spell(ins, draw), "out_axis": spell(outs, draw), "batch_axis": tuple(batches)}

    return layouts()
