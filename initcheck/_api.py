"""The public entry points: `check`, `assert_conforms` and `expects`."""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import math
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

import jax
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

import initcheck.strategies as strategies  # (installed from strategies/: mypy reads it as Any)
from initcheck import _dtypes, adapters, laws
from initcheck import _profiles as profiles
from initcheck import _sampler as sampler
from initcheck._properties import PER_INITIALIZER, PROPERTIES, CaseContext, run_property, select_properties
from initcheck._properties.contract import check_contract
from initcheck._verdict import ERROR, FAIL, Conformance, ConformanceError, Verdict

F = TypeVar("F", bound=Callable[..., Any])
LawLike: TypeAlias = Any  # a law of initcheck.laws, or a frozen continuous scipy.stats distribution
ShapesLike: TypeAlias = Sequence[Sequence[int]] | st.SearchStrategy | None  # shapes, or a Hypothesis strategy of them
DTypesLike: TypeAlias = Sequence[Any] | st.SearchStrategy | None  # dtypes (names, numpy or JAX types), or a strategy

DEFAULT_DTYPES = ("float32",)


@functools.cache
def _draw_thread() -> concurrent.futures.ThreadPoolExecutor:
    """The one thread that every draw runs on. Hypothesis's test context is thread-local: a thread
    of our own keeps a call from a user's @given test from counting as a nested @given. One thread
    for the whole process, because Hypothesis registers a PRNG the first time each thread draws, and
    that registration (a full `gc.collect`) cost about 0.25 s per draw once JAX is loaded."""
    return concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="initcheck-draw")


def _draw_examples(strategy: st.SearchStrategy, count: int, seed: int) -> list[tuple[int, ...]]:
    """`count` distinct examples of `strategy` (shapes or dtypes), the same for the same seed."""
    seen: list = []

    def collect(shape) -> bool:
        if shape not in seen:
            seen.append(shape)
        return False

    budget = settings(
        max_examples=max(20, 4 * count),
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        deadline=None,
    )

    def search():
        with contextlib.suppress(NoSuchExample):  # collect never accepts: find runs the whole budget
            find(strategy, collect, settings=budget, random=random.Random(seed))

    _draw_thread().submit(search).result()
    if len(seen) <= count:
        return seen
    # Hypothesis starts from the simplest example; spread the picks over the larger half by size.
    by_size = sorted(seen, key=lambda s: (math.prod(s) if isinstance(s, tuple) else 0, str(s)))
    top = len(by_size) - 1
    picks = sorted({round(top - i * (top / 2) / max(1, count - 1)) for i in range(count)}, reverse=True)
    # (count distinct indices from top down to top/2: the largest examples and a spread below them)
    return [by_size[i] for i in picks]


def _shapes(shapes, law: laws.Law, count: int, seed: int) -> list[tuple[int, ...]]:
    if shapes is None:
        shapes = strategies.shapes_for(law)
    if isinstance(shapes, st.SearchStrategy):
        return _draw_examples(shapes, count, seed)
    if isinstance(shapes, (str, bytes)) or not isinstance(shapes, Iterable):
        raise TypeError(f"shapes={shapes!r} must be a list of shapes or a Hypothesis strategy")
    out = []
    for shape in shapes:
        try:
            shape = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            raise TypeError(f"shapes: {shape!r} is not a shape; use a tuple of ints like (64, 32)") from None
        if any(s < 0 for s in shape):
            raise ValueError(f"shapes: {shape} has a negative side")
        out.append(shape)
    if not out:
        raise ValueError("shapes=[] is empty; pass at least one shape or leave it out")
    return out


def _dtypes_of(dtypes, law: laws.Law, seed: int) -> list:
    if dtypes is None:
        dtypes = DEFAULT_DTYPES
    if isinstance(dtypes, st.SearchStrategy):
        dtypes = _draw_examples(dtypes, 2, seed)
    if isinstance(dtypes, (str, bytes)) or not isinstance(dtypes, Iterable):
        dtypes = [dtypes]
    out = [_dtypes.canonical(d) for d in dtypes]
    for d in out:
        if not _dtypes.is_inexact(d):
            raise ValueError(f"dtypes: {d} is not a float or complex dtype")
        if d.itemsize == 8 * (1 + _dtypes.is_complex(d)) and not jax.config.jax_enable_x64:
            raise ValueError(
                f"dtypes: {d} needs 64-bit JAX; call jax.config.update('jax_enable_x64', True) "
                "first or use a 32-bit dtype"
            )
        law.check_dtype(d)
    return out


def _gated(gate: Verdict, ctx: CaseContext, name: str) -> Verdict:
    """Run a property unless the case's contract failed (then nothing else can be trusted)."""
    if gate.status in (FAIL, ERROR):
        return ctx.errored(name, f"not run: the contract failed ({gate.message})", gated=True)
    return run_property(PROPERTIES[name], ctx, name)


def check(
    init: Callable[..., Any],
    expect: LawLike,
    *,
    shapes: ShapesLike = None,
    dtypes: DTypesLike = None,
    properties: Sequence[str] | None = None,
    seed: int = 0,
    profile: str | profiles.Profile = "ci",
    origin: str | None = None,
) -> Conformance:
    """Check `init(key, shape, dtype)` against the law `expect` on every case (shape x dtype) and property.

    A shape the law refuses (variance scaling on a 1-D shape) is an `errors` case: the initializer
    must raise there. Keys derive from `seed` and the case, so the same call gives the same
    verdicts.

    Args:
        init: The initializer: `init(key, shape, dtype)`, a Haiku-style `init(shape, dtype)`, or a
            Keras initializer.
        expect: The law it promises: a law of [`initcheck.laws`][initcheck.laws] or a frozen
            continuous scipy.stats distribution.
        shapes: A list of shapes or a Hypothesis strategy of them (drawn deterministically from
            `seed`); by default `profile.cases` shapes from
            `initcheck.strategies.shapes_for(expect)`.
        dtypes: A list of dtypes (names, numpy or JAX types) or a Hypothesis strategy of them; by
            default float32.
        properties: The properties to check (by default all of them).
        seed: The seed every key and every drawn case derives from, an int >= 0.
        profile: How hard to look: `"quick"`, `"ci"`, `"thorough"` or a
            [`Profile`][initcheck.Profile].
        origin: Python that defines `init` and `law`, so that a failure's reproduction snippet
            runs as printed (e.g. `"from mypkg.inits import good as init\\nlaw = init.__initcheck_law__"`).
            By default the snippet imports `init` from the module that holds it (by its name, or
            bound at an imported module's top level) and writes the law out; an initializer no
            module holds (a lambda typed in a REPL) is left as `init = ...` with a comment, and the
            snippet run as printed stops with `NotImplementedError` saying so.

    Returns:
        Every verdict; true when nothing failed (see `Conformance.passed`).

    Raises:
        TypeError: `expect`, `shapes` or a shape is of the wrong kind.
        ValueError: `seed`, `profile`, `properties`, a shape or a dtype is refused (e.g. float64
            without `jax_enable_x64`, or a dtype the law refuses).

    Example:
        ```python
        import jax
        import initcheck
        from initcheck import laws

        he = laws.VarianceScaling(2.0, "fan_in", "truncated_normal")
        report = initcheck.check(jax.nn.initializers.he_normal(), he)
        print(report)  # one row per property and case, then CONFORMS or the failures
        ```
    """
    return _check(init, expect, shapes, dtypes, properties, seed, profile, paired=False, origin=origin)


def check_paired(
    init: Callable[..., Any],
    expect: LawLike,
    *,
    dtypes: Sequence[str],
    shapes: ShapesLike = None,
    properties: Sequence[str] | None = None,
    seed: int = 0,
    profile: str | profiles.Profile = "ci",
    origin: str | None = None,
    eager_dtype: str | None = None,
) -> Conformance:
    """`check` on `paired_cases` of the drawn shapes and `dtypes` (the whole grid when
    `profile.full_grid`); with `eager_dtype`, only that dtype's cases call the initializer
    eagerly (`contract` and `determinism`; the jitted path is checked in every case)."""
    return _check(
        init, expect, shapes, dtypes, properties, seed, profile, paired=True, origin=origin, eager_dtype=eager_dtype
    )


def paired_cases(shapes: Sequence, dtypes: Sequence) -> list[tuple]:
    """`max(len(shapes), len(dtypes))` cases `(shapes[i % S], dtypes[i % D])`: every shape and
    every dtype is checked at least once, without the cost of the whole grid (a catalog `ci` run)."""
    return [(shapes[i % len(shapes)], dtypes[i % len(dtypes)]) for i in range(max(len(shapes), len(dtypes)))]


def _check(
    init,
    expect,
    shapes,
    dtypes,
    properties,
    seed,
    profile,
    *,
    paired: bool,
    origin: str | None = None,
    eager_dtype: str | None = None,
) -> Conformance:
    """Every property on every case (the contract first: a case whose contract fails runs nothing
    else), and the per-initializer properties on the first case."""
    started = time.perf_counter()
    prof = profiles.get(profile)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative int")
    law = laws.as_law(expect)
    names = select_properties(properties, PROPERTIES)
    dtype_list = _dtypes_of(dtypes, law, seed)
    shape_list = _shapes(shapes, law, prof.cases, seed)
    if paired and not prof.full_grid:
        cases = paired_cases(shape_list, dtype_list)
    else:
        cases = [(shape, dtype) for shape in shape_list for dtype in dtype_list]
    label = adapters.describe(init) if callable(init) else repr(init)
    fn = adapters.canonical(init)
    verdicts: list[Verdict] = []
    # A case the law itself refuses (variance scaling on a 1-D shape) is an `errors` case: the
    # initializer must raise there; neither the contract nor the statistics run on it.
    refused = [(shape, dtype) for shape, dtype in cases if law.error_reason(shape, dtype) is not None]
    contexts = [
        CaseContext(fn, label, law, shape, dtype, prof, seed, origin=origin, eager_dtype=eager_dtype, given=init)
        for shape, dtype in cases
        if (shape, dtype) not in refused
    ]
    gates = []
    for ctx in contexts:
        gate = run_property(check_contract, ctx, "contract")
        gates.append(gate)
        if "contract" in names:
            verdicts.append(gate)
        for name in names:
            if name == "contract" or name in PER_INITIALIZER:
                continue
            verdicts.append(_gated(gate, ctx, name))
    first = (
        contexts[0]
        if contexts
        else CaseContext(fn, label, law, refused[0][0], refused[0][1], prof, seed, origin=origin, given=init)
    )
    first.refused_shapes = [shape for shape, _ in refused]
    for name in PER_INITIALIZER:
        if name in names:
            verdicts.append(_gated(gates[0], first, name) if gates else run_property(PROPERTIES[name], first, name))
    if refused and "errors" not in names:
        verdicts.append(
            first.skipped(
                "errors",
                f"shapes {first.refused_shapes} are refused by {law!r}: the "
                "errors property checks that the initializer raises there",
            )
        )
    return Conformance(
        label, repr(law), verdicts, prof.name, seed, sampler.device_description(), seconds=time.perf_counter() - started
    )


def assert_conforms(init: Callable[..., Any], expect: LawLike, **options: Any) -> Conformance:
    """[`check`][initcheck.check], and raise if anything failed.

    Args:
        init: The initializer, as for `check`.
        expect: The law it promises, as for `check`.
        **options: `check`'s keyword arguments (`shapes`, `dtypes`, `properties`, `seed`,
            `profile`, `origin`).

    Returns:
        The report, when it passes.

    Raises:
        ConformanceError: Something failed; the message lists every failure with the snippet that
            reproduces it.

    Example:
        ```python
        def test_my_init():
            initcheck.assert_conforms(my_init, laws.Normal(0.02), profile="quick")
        ```
    """
    report = check(init, expect, **options)
    if not report.passed:
        raise ConformanceError(report.failure_text())
    return report


def expects(
    expect: LawLike, *, shapes: ShapesLike = None, dtypes: DTypesLike = None, skip: Mapping[str, str] | None = None
) -> Callable[[F], F]:
    """Mark a user initializer with the law it promises.

    The mark is read by `initcheck.audit`, `initcheck check` and `pytest --initcheck`. Works on
    functions `init(key, shape, dtype)` and on Haiku-style `init(shape, dtype)` alike.

    Args:
        expect: The law it promises, as for `check`.
        shapes: The shapes the plugin checks it on (as for `check`); by default those `check`
            chooses.
        dtypes: The dtypes the plugin checks it on (as for `check`); by default those `check`
            chooses.
        skip: Properties the declaration opts out of, mapped to the reason, shown in the report
            (`{"errors": "the std depends on the shape; 1-D shapes are fine here"}`).

    Returns:
        A decorator that sets the initializer's `__initcheck_law__` (and its cases and skips) and
            returns it unchanged; it raises `TypeError` on anything not callable.

    Raises:
        TypeError: `expect` is not a law or a frozen continuous distribution.
        ValueError: `skip` names an unknown property or gives no reason.

    Example:
        ```python
        @initcheck.expects(laws.Normal(0.02))
        def init(key, shape, dtype=jnp.float32):
            return 0.02 * jax.random.normal(key, shape, dtype)
        ```
    """
    law = laws.as_law(expect)
    skip = dict(skip or {})
    unknown = sorted(set(skip) - set(PROPERTIES))
    if unknown:
        raise ValueError(
            f"expects: skip={skip!r} names unknown properties {unknown}; choose from {', '.join(PROPERTIES)}"
        )
    if not all(isinstance(r, str) and r.strip() for r in skip.values()):
        raise ValueError(
            f"expects: skip={skip!r}: give each skipped property a reason, e.g. "
            "skip={'errors': 'the std depends on the shape'}"
        )

    def mark(init):
        if not callable(init):
            raise TypeError(f"expects(...) marks an initializer; got {init!r}")
        init.__initcheck_law__ = law
        init.__initcheck_cases__ = {"shapes": shapes, "dtypes": dtypes}
        init.__initcheck_skip__ = skip
        return init

    return mark


__all__ = ["ConformanceError", "assert_conforms", "check", "expects"]
