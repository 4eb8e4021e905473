"""``contract`` (callable as (key, shape, dtype), right shape, dtype, finite, jit, key types) and
``errors`` (documented failure modes raise clear errors; edge shapes give correct output)."""

from __future__ import annotations

import functools
import math

import jax
import numpy as np

from initcheck import _dtypes, adapters
from initcheck import _sampler as sampler
from initcheck._properties._context import CaseContext
from initcheck._verdict import Verdict

# Exceptions whose type says what went wrong; others (IndexError: tuple index out of range, ...)
# still count as a refusal, not garbage, and are named in the verdict's message.
CLEAR_ERRORS = (ValueError, TypeError, NotImplementedError, ArithmeticError)
EDGE_SHAPES = [(), (0,), (7,), (1, 1), (0, 5), (5, 0), (2, 0, 3)]


def output_problems(value, shape, dtype, what: str) -> list[str]:
    """What is wrong with an initializer's output: type, shape, dtype, non-finite values."""
    if not isinstance(value, jax.Array):
        return [f"{what} returned {type(value).__module__}.{type(value).__qualname__}, not a jax.Array"]
    problems = []
    if tuple(value.shape) != tuple(shape):
        problems.append(f"{what} returned shape {tuple(value.shape)}, expected {tuple(shape)}")
    if np.dtype(value.dtype) != np.dtype(dtype):
        problems.append(f"{what} returned dtype {value.dtype}, expected {np.dtype(dtype).name} (dtype ignored?)")
    elif getattr(value, "weak_type", False):
        problems.append(
            f"{what} returned a weak-typed {value.dtype} (a Python scalar broadcast without dtype=, such as "
            "jnp.full(shape, 0.1)): next to bfloat16 inputs it promotes differently and recompiles a jitted step; "
            "pass dtype=dtype"
        )
    if not problems and value.size:
        bad = int(np.sum(~np.isfinite(_dtypes.to_float64(value))))
        if bad:
            problems.append(f"{what} returned {bad} non-finite values (NaN or inf) of {value.size}")
    return problems


def describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".strip()


def check_contract(ctx: CaseContext):
    name = "contract"
    problem = adapters.signature_problem(ctx.init)
    if problem:
        return ctx.failed(name, problem)
    nbytes = ctx.size * ctx.dtype.itemsize
    if nbytes > ctx.profile.max_output_bytes:
        return ctx.failed(
            name,
            f"refused before sampling: shape={ctx.shape} in {ctx.dtype_name} needs "
            f"{nbytes / 2**30:.1f} GiB, over the {ctx.profile.max_output_bytes / 2**30:.1f} GiB "
            "limit; check a smaller shape",
        )
    key = sampler.case_key(ctx.seed, ctx.case_id(name))

    call = ctx.call
    limit = ctx.profile.time_limit_s
    try:
        abstract = sampler.call_with_timeout(lambda: jax.eval_shape(call, key), limit)
        jit_error = None
    except sampler.CallTimeout as exc:
        return ctx.failed(name, f"tracing init(key, {ctx.shape}, {ctx.dtype_name}) {exc}")
    except Exception as exc:  # noqa: BLE001 - any failure to trace is a finding
        abstract, jit_error = None, exc
    if abstract is not None and hasattr(abstract, "shape") and hasattr(abstract, "dtype"):
        out_bytes = math.prod(abstract.shape) * np.dtype(abstract.dtype).itemsize
        if out_bytes > ctx.profile.max_output_bytes:
            return ctx.failed(
                name,
                f"refused before sampling: the output would be shape {abstract.shape} "
                f"({out_bytes / 2**30:.1f} GiB) for requested shape={ctx.shape}",
            )
    problems = _eager_problems(ctx, key) if ctx.eager else []
    if isinstance(problems, Verdict):
        return problems
    if jit_error is not None:
        problems.append(f"fails under jax.jit: {describe_error(jit_error)}")
    else:
        try:
            problems += output_problems(ctx.jitted(key), ctx.shape, ctx.dtype, "jax.jit(jax.vmap(init))")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"fails under jax.jit(jax.vmap(init)): {describe_error(exc)}")
    if problems:
        return ctx.failed(name, "; ".join(problems))
    if not ctx.eager:
        return ctx.passed(
            name, f"jitted: exact shape and dtype, finite; eager calls and typed keys checked in {ctx.eager_dtype}"
        )
    return ctx.passed(
        name,
        "callable as (key, shape, dtype) with legacy and typed keys, eager and jitted; exact shape and dtype; finite",
    )


def _eager_problems(ctx: CaseContext, key) -> list[str] | Verdict:
    """The eager calls' problems (legacy and typed key), or the failed verdict of a call that hangs
    or raises."""
    name, call, limit = "contract", ctx.call, ctx.profile.time_limit_s
    try:
        value = sampler.call_with_timeout(lambda: call(key), limit)
    except sampler.CallTimeout as exc:
        return ctx.failed(name, f"init(key, {ctx.shape}, {ctx.dtype_name}) {exc}")
    except Exception as exc:  # noqa: BLE001
        return ctx.failed(name, f"init(key, {ctx.shape}, {ctx.dtype_name}) raised {describe_error(exc)}")
    problems = output_problems(value, ctx.shape, ctx.dtype, "init(PRNGKey, shape, dtype)")
    try:
        problems += output_problems(
            call(jax.random.wrap_key_data(key)), ctx.shape, ctx.dtype, "init(jax.random.key, shape, dtype)"
        )
    except Exception as exc:  # noqa: BLE001
        problems.append(f"fails with a typed key (jax.random.key): {describe_error(exc)}")
    return problems


def check_errors(ctx: CaseContext):
    name = "errors"
    shapes = EDGE_SHAPES + [s for s in [*ctx.law.edge_shapes(), *ctx.refused_shapes] if s not in EDGE_SHAPES]
    problems, notes = [], []
    for shape in shapes:
        reason = ctx.law.error_reason(shape, ctx.dtype)
        key = sampler.case_key(ctx.seed, f"errors|{shape}|{ctx.dtype_name}")
        try:
            value = sampler.call_with_timeout(
                functools.partial(ctx.init, key, shape, ctx.dtype), ctx.profile.time_limit_s
            )
        except sampler.CallTimeout as exc:
            problems.append(f"shape={shape}: {exc}")
            continue
        except Exception as exc:  # noqa: BLE001 - a refusal, judged by its message
            if not str(exc).strip():
                problems.append(f"shape={shape}: raised {type(exc).__name__} with an empty message")
            else:
                unclear = "" if isinstance(exc, CLEAR_ERRORS) else " (unclear)"
                notes.append(f"{shape}: {type(exc).__name__}{unclear}")
            continue
        if reason is not None:
            problems.append(
                f"shape={shape}: returned {getattr(value, 'shape', type(value).__name__)} "
                f"instead of raising, but {reason}"
            )
        else:
            problems += [f"shape={shape}: {p}" for p in output_problems(value, shape, ctx.dtype, "init")]
    refused_dtypes = [d for d in ctx.law.refused if _dtype_available(d)]
    for dtype in refused_dtypes:
        key = sampler.case_key(ctx.seed, f"errors|{ctx.shape}|{dtype}")
        try:
            value = sampler.call_with_timeout(
                functools.partial(ctx.init, key, ctx.shape, _dtypes.canonical(dtype)), ctx.profile.time_limit_s
            )
        except sampler.CallTimeout as exc:
            problems.append(f"dtype={dtype}: {exc}")
        except Exception as exc:  # noqa: BLE001
            if not str(exc).strip():
                problems.append(f"dtype={dtype}: raised {type(exc).__name__} with an empty message")
            else:
                notes.append(f"{dtype}: {type(exc).__name__}")
        else:
            problems.append(
                f"dtype={dtype}: returned {getattr(value, 'dtype', type(value).__name__)} instead of "
                f"raising, but it is documented to raise ({ctx.law.refused[dtype]})"
            )
    checked = len(shapes) + len(refused_dtypes)
    if problems:
        return ctx.failed(name, "; ".join(problems), n=checked)
    refused = f"; refused: {', '.join(notes)}" if notes else ""
    dtypes = f" and dtypes {refused_dtypes}" if refused_dtypes else ""
    return ctx.passed(name, f"edge shapes {shapes}{dtypes} handled{refused}", n=checked)


def _dtype_available(dtype: str) -> bool:
    """64-bit dtypes exist only under JAX's x64 mode."""
    return _dtypes.real_part(dtype).itemsize < 8 or bool(jax.config.jax_enable_x64)
