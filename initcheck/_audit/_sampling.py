"""Bounded samples of a model's values: what the statistical properties test at any size.

A value of N elements (its S slices pooled) larger than the profile's ``n`` is tested on a sample
whose positions derive from the audit's seed and the value's path (``numpy.random.default_rng``
seeded with ``(seed, crc32(path))``: the same audit samples the same positions):

- **elements** (``bounds``' end test, ``distribution``, ``moments``): ``n`` positions drawn
  uniformly without replacement, stratified over the slices (``n / S`` from each, so every layer
  of a stacked value is represented);
- **blocks** (``independence``): contiguous windows of the value's own axes, one per chosen slice,
  so that lags along each axis keep their meaning (a broadcast row, a tiled block or values sorted
  within groups show as correlation at a lag inside the window).

Under the null hypothesis (i.i.d. elements), any selection of positions fixed before the values
are seen is i.i.d. too, so every test keeps its false-alarm rate; what a sample cannot see is
covered by the exact checks that run over every value on the device (``exact``: non-finite
values, values outside the support, exact zeros of a continuous law) and by ``derivation``, which
compares every value bit for bit.

The sample is gathered on the device; only the sample crosses to the host, in float64.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import zlib
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from initcheck._properties import Exact
from initcheck._record import Parameter
from initcheck._sampler import window

BLOCK_SLICES = 4  # slices of a stacked value that give independence a block (first, last, two between)


@dataclasses.dataclass(frozen=True)
class Sample:
    """Values of a parameter as ``(K, *shape)`` and how they were taken."""

    values: np.ndarray
    how: str  # "" when the sample is every value
    total: int

    @property
    def sampled(self) -> bool:
        return bool(self.how)


def _generator(seed: int, path: str, what: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(f"{what}|{path}".encode())])


@dataclasses.dataclass
class Slices:
    """A value as ``count`` slices of ``shape``, each fetched on the device by ``get(i)``: the slices
    of a value in memory, or of one made slice by slice (the memory budget's abstract path)."""

    count: int
    shape: tuple[int, ...]
    get: Callable[[int], jax.Array]
    view: jax.Array | None = None  # every slice at once, ``(count, *shape)``, for a value in memory

    @property
    def total(self) -> int:
        return self.count * math.prod(self.shape)


def in_memory(value, stacked: tuple[int, ...], count: int, shape: tuple[int, ...]) -> Slices:
    """The slices of a value in memory (a stacked value's slice axes moved first)."""
    x = jnp.asarray(value)
    if stacked:
        x = jnp.moveaxis(x, stacked, tuple(range(len(stacked))))
    view = x.reshape((count, *shape))
    return Slices(count, tuple(shape), lambda i: view[i], view)


def whole(slices: Slices) -> np.ndarray:
    """Every value, as ``(count, *shape)`` on the host."""
    return (
        np.stack([np.asarray(slices.get(i)) for i in range(slices.count)])
        if slices.count
        else np.zeros((0, *slices.shape))
    )


def _element_plan(slices: Slices, n: int, seed: int, path: str) -> list[np.ndarray]:
    """Positions in each slice (flattened) of an ``n``-value sample stratified over the slices."""
    rng = _generator(seed, path, "elements")
    base, extra = divmod(n, slices.count)
    per_slice = math.prod(slices.shape)
    return [
        np.sort(rng.choice(per_slice, min(per_slice, base + (i < extra)), replace=False)) for i in range(slices.count)
    ]


def _block_plan(slices: Slices, n: int, seed: int, path: str) -> tuple[tuple[int, ...], dict[int, list[int]]]:
    """The window's size and its start in each chosen slice (the first, the last and evenly between)."""
    chosen = sorted({round(float(i)) for i in np.linspace(0, slices.count - 1, min(slices.count, BLOCK_SLICES))})
    size = window(slices.shape, max(2, n // len(chosen)))
    rng = _generator(seed, path, "blocks")
    return size, {s: [int(rng.integers(0, d - w + 1)) for d, w in zip(slices.shape, size)] for s in chosen}


def _element_sample(taken: list[np.ndarray], slices: Slices, n: int) -> Sample:
    values = np.concatenate(taken)
    spread = f", about {n // slices.count} from each of its {slices.count} slices" if slices.count > 1 else ""
    how = f"{values.size} of its {slices.total} values at positions derived from the seed and its path{spread}"
    return Sample(values[None], how, slices.total)


def _block_sample(taken: list[np.ndarray], slices: Slices, size, starts: dict) -> Sample:
    values = np.stack(taken)
    where = [f"{s}@{tuple(start)}" if slices.count > 1 else f"{tuple(start)}" for s, start in starts.items()]
    within = f"slices {', '.join(where)}" if slices.count > 1 else f"offset {where[0]}"
    how = (
        f"{len(starts)} block(s) of shape {size} ({values.size} of its {slices.total} values) at {within}, "
        "derived from the seed and its path"
    )
    return Sample(values, how, slices.total)


def is_whole(slices: Slices, n: int) -> bool:
    """Whether the statistical properties see every value (at most ``n`` of them)."""
    return slices.total <= n or math.prod(slices.shape) == 0


def elements(slices: Slices, *, n: int, seed: int, path: str) -> Sample:
    """Every value when there are at most ``n``, else ``n`` of them stratified over the slices."""
    if is_whole(slices, n):
        return Sample(whole(slices), "", slices.total)
    plan = _element_plan(slices, n, seed, path)
    if slices.view is not None:  # one gather from the value in memory
        rows = np.repeat(np.arange(slices.count), [len(p) for p in plan])
        got = np.asarray(_take_rows(slices.view, jnp.asarray(rows), jnp.asarray(np.concatenate(plan))))
        return _element_sample([got], slices, n)
    return _element_sample([np.asarray(_take(slices.get(i), jnp.asarray(p))) for i, p in enumerate(plan)], slices, n)


@jax.jit
def _take(x, positions):
    return jnp.ravel(x)[positions]


@jax.jit
def _take_rows(view, rows, positions):
    return jnp.reshape(view, (view.shape[0], -1))[rows, positions]


@jax.jit
def equal_slices(a, b):
    """Per slice of two ``(count, *shape)`` arrays: whether it is bit for bit the same in both."""
    same = a == b
    if jnp.issubdtype(a.dtype, jnp.inexact):
        same |= jnp.isnan(a) & jnp.isnan(b)
    return jnp.all(jnp.reshape(same, (a.shape[0], -1)), axis=1)


def blocks(slices: Slices, *, n: int, seed: int, path: str) -> Sample:
    """Every value when there are at most ``n``, else a contiguous window of the value's own axes
    from each of up to ``BLOCK_SLICES`` slices (the first, the last and evenly between)."""
    if is_whole(slices, n):
        return Sample(whole(slices), "", slices.total)
    size, starts = _block_plan(slices, n, seed, path)
    taken = [np.asarray(jax.lax.dynamic_slice(slices.get(s), start, size)) for s, start in starts.items()]
    return _block_sample(taken, slices, size, starts)


@partial(jax.jit, static_argnames=("intervals",))
def _exact(value, *, intervals: tuple):
    x = jnp.ravel(value)
    x = jnp.abs(x) ** 2 if jnp.iscomplexobj(x) else x
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    if intervals:
        inside = functools.reduce(jnp.logical_or, [(x >= lo) & (x <= hi) for lo, hi in intervals])
    else:
        inside = jnp.isfinite(x)
    outside = ~inside
    far = jnp.max(jnp.where(outside & jnp.isfinite(x), jnp.abs(x), -1.0))
    far_value = jnp.where(far >= 0, jnp.max(jnp.where(outside & (jnp.abs(x) == far), x, -jnp.inf)), jnp.nan)
    return jnp.sum(~jnp.isfinite(x)), jnp.sum(outside), far_value, jnp.sum(x == 0)


class _Counts:
    """``Exact`` accumulated slice by slice."""

    def __init__(self):
        self.nonfinite = self.outside = self.zeros = 0
        self.farthest = np.nan

    def add(self, x, intervals: list[tuple[float, float]]) -> None:
        # the bounds rounded outward to float32, the widest dtype JAX computes in by default
        down = lambda v: float(np.nextafter(np.float32(v), np.float32(-np.inf)))
        up = lambda v: float(np.nextafter(np.float32(v), np.float32(np.inf)))
        bands = tuple((down(lo), up(hi)) for lo, hi in intervals)
        nonfinite, outside, far, zeros = jax.device_get(_exact(x, intervals=bands))
        self.nonfinite, self.outside, self.zeros = (
            self.nonfinite + int(nonfinite),
            self.outside + int(outside),
            self.zeros + int(zeros),
        )
        if np.isfinite(far) and not abs(self.farthest) >= abs(float(far)):
            self.farthest = float(far)

    def result(self, total: int) -> Exact:
        return Exact(total, self.nonfinite, self.outside, self.farthest, self.zeros)


def exact(slices: Slices, intervals: list[tuple[float, float]]) -> Exact:
    """Counts over every value (``|z|^2`` of a complex one): non-finite, outside ``intervals``
    (``[lo, hi]`` pairs, tolerances included; none: every finite value is inside), exactly zero."""
    counts = _Counts()
    for i in range(slices.count):
        counts.add(slices.get(i), intervals)
    return counts.result(slices.total)


def survey(slices: Slices, intervals: list[list[tuple[float, float]]], *, n: int, seed: int, path: str):
    """``elements``, ``blocks`` and ``exact`` for each of ``intervals``, in one pass that makes each
    slice once (the abstract path makes them one at a time; the samples equal those the other
    functions take from the same values in memory)."""
    element_plan = _element_plan(slices, n, seed, path)
    size, starts = _block_plan(slices, n, seed, path)
    element_taken, block_taken = [], []
    counts = {tuple(iv): _Counts() for iv in intervals}
    for i in range(slices.count):
        x = slices.get(i)
        element_taken.append(np.asarray(_take(x, jnp.asarray(element_plan[i]))))
        if i in starts:
            block_taken.append(np.asarray(jax.lax.dynamic_slice(x, starts[i], size)))
        for key, count in counts.items():
            count.add(x, list(key))
        del x
    samples = _element_sample(element_taken, slices, n), _block_sample(block_taken, slices, size, starts)
    return (*samples, {key: count.result(slices.total) for key, count in counts.items()})


@dataclasses.dataclass
class Found:
    """A value's bounded samples and its counts over every value: taken when first asked for (in
    memory), or all in one pass over its slices when it is made slice by slice (``Lazy``)."""

    parameter: Parameter
    n: int
    seed: int
    done: dict = dataclasses.field(default_factory=dict)

    @property
    def path(self) -> str:
        return self.parameter.path

    @property
    def streamed(self) -> bool:
        return self.parameter.lazy is not None

    @functools.cached_property
    def slices(self) -> Slices:
        """The value's slices on the device (made one by one from its declared initializer when lazy)."""
        p, shape = self.parameter, tuple(self.parameter.slice_shape)
        if p.lazy is None:
            return in_memory(p.value, tuple(p.stacked), p.slice_count, shape)
        declared = p.lazy.declared
        if declared is None:
            raise ValueError(f"{p.path}: nothing derived to make it from")
        return Slices(p.slice_count, shape, lambda i: jnp.reshape(declared(i), shape))

    @functools.cached_property
    def everything(self) -> Slices | None:
        """A value in memory as one flat slice: counted in one call."""
        if self.streamed:
            return None
        flat = jnp.ravel(jnp.asarray(self.parameter.value))
        return Slices(1, (flat.size,), lambda i: flat)

    def sample(self, kind: str) -> Sample:
        if kind not in self.done:
            if self.streamed and not is_whole(self.slices, self.n):
                raise AssertionError("a value made slice by slice is surveyed first (Found.survey)")
            take = blocks if kind == "blocks" else elements
            self.done[kind] = take(self.slices, n=self.n, seed=self.seed, path=self.path)
        return self.done[kind]

    def exact(self, intervals: list[tuple[float, float]]) -> Exact:
        key = ("exact", tuple(intervals))
        if key not in self.done:
            self.done[key] = exact(self.everything or self.slices, intervals)
        return self.done[key]

    def survey(self, intervals: list[list[tuple[float, float]]]) -> None:
        """Take both samples and every count in one pass over the slices."""
        if is_whole(self.slices, self.n):
            return
        elements, blocks, counts = survey(self.slices, intervals, n=self.n, seed=self.seed, path=self.path)
        self.done.update({"elements": elements, "blocks": blocks})
        self.done.update({("exact", key): value for key, value in counts.items()})
