"""The key contract: ``determinism`` (same key, same output) and ``key_sensitivity`` (different
keys, different and independent outputs; or the same output for deterministic laws)."""

from __future__ import annotations

import collections
import functools
import math
import zlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from initcheck import _dtypes, _rounding
from initcheck import _sampler as sampler
from initcheck import _stats as stats
from initcheck._element import ComplexLaw
from initcheck._properties._context import CaseContext, NotApplicable

ULPS = 4  # eager vs jit: XLA may reassociate (e.g. sqrt2 * erfinv(u) * stddev), a few ulp apart


def _same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _within_ulps(a, b, dtype) -> bool:
    """|a - b| <= ULPS ulp of the output's largest magnitude (cancellation, as in mean + std * z
    near zero, makes per-element ulps too strict)."""
    a, b = _dtypes.to_float64(a), _dtypes.to_float64(b)
    if a.size == 0:
        return a.shape == b.shape
    magnitude = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))), float(np.finfo(np.float32).tiny))
    return bool(np.all(np.abs(a - b) <= ULPS * _dtypes.resolution(dtype) * magnitude))


IMPLS = ("threefry2x32", "rbg", "unsafe_rbg")  # JAX's PRNG implementations: typed keys of each are tried
WIDE_IMPLS = ("rbg", "unsafe_rbg")  # 4-word keys: an initializer may read only some of their words


def _with_impl(init, impl: str):
    """``init`` taking the raw data of a key of ``impl`` (what the sampler batches), wrapped into
    a typed key inside: one function per (init, impl), so its compilation is cached."""
    try:
        return _cached_with_impl(init, impl)
    except TypeError:  # an unhashable callable: no cache
        return _make_with_impl(init, impl)


def _make_with_impl(init, impl: str):
    def typed_init(data, shape, dtype):
        return init(jax.random.wrap_key_data(data, impl=impl), shape, dtype)

    return typed_init


_cached_with_impl = functools.lru_cache(maxsize=256)(_make_with_impl)


def _impl_data(ctx: CaseContext, name: str, impl: str, count: int) -> np.ndarray:
    """Raw data of ``count`` keys of ``impl`` for case ``name``: fold_in(key(crc32(case), impl), i)."""
    root = jax.random.key(zlib.crc32(f"{ctx.seed}|{ctx.case_id(name)}".encode()), impl=impl)
    return np.stack([np.asarray(jax.random.key_data(jax.random.fold_in(root, i))) for i in range(count)])


def _impl_draw(ctx: CaseContext, impl: str, data: np.ndarray) -> np.ndarray:
    """``init(wrap_key_data(d, impl=impl), shape, dtype)`` for each row ``d`` of ``data``, jitted."""
    return sampler.draw(_with_impl(ctx.init, impl), ctx.shape, ctx.dtype, data, batch=ctx.batch)


def _impl_problems(ctx: CaseContext, name: str) -> list[str]:
    """Same typed key of each implementation, same output: two jitted calls (and, in eager cases,
    two eager calls, within ULPS of the jitted one)."""
    problems = []
    for impl in IMPLS:
        data = _impl_data(ctx, name, impl, 1)
        jit1, jit2 = _impl_draw(ctx, impl, data)[0], _impl_draw(ctx, impl, data)[0]
        if not _same_bits(jit1, jit2):
            problems.append(f"two jitted calls with the same typed {impl} key differ")
        if ctx.eager:
            key = jax.random.wrap_key_data(data[0], impl=impl)
            eager1, eager2 = ctx.call(key), ctx.call(key)
            if not _same_bits(eager1, eager2):
                problems.append(f"two eager calls with the same typed {impl} key differ")
            elif not _within_ulps(eager1, jit1, ctx.dtype):
                problems.append(f"eager and jitted outputs for a typed {impl} key differ by more than {ULPS} ulp")
    return problems


def check_determinism(ctx: CaseContext):
    name = "determinism"
    key = sampler.case_key(ctx.seed, ctx.case_id(name))
    typed = jax.random.wrap_key_data(key)
    impl_problems = _impl_problems(ctx, name)

    call, jitted = ctx.call, ctx.jitted
    jit1, jit2 = jitted(key), jitted(key)
    if not ctx.eager:  # the eager calls of this entry run in its eager dtype (catalog, ci)
        problems = (["two jitted calls with the same key differ"] if not _same_bits(jit1, jit2) else []) + impl_problems
        if problems:
            return ctx.failed(name, "; ".join(problems), n=2 + 2 * len(IMPLS))
        return ctx.passed(
            name,
            f"bit-identical for repeated jitted calls, typed keys of {', '.join(IMPLS)} too; eager calls checked "
            f"in {ctx.eager_dtype}",
            n=2 + 2 * len(IMPLS),
        )
    eager1, eager2, eager_typed = call(key), call(key), call(typed)
    problems = []
    if not _same_bits(eager1, eager2):
        problems.append("two eager calls with the same key differ (global RNG or hidden state?)")
    if not _same_bits(eager1, eager_typed):
        problems.append("a legacy PRNGKey and the typed key wrapping the same data give different outputs")
    if not _same_bits(jit1, jit2):
        problems.append("two jitted calls with the same key differ")
    if not _within_ulps(eager1, jit1, ctx.dtype):
        problems.append(f"eager and jitted outputs differ by more than {ULPS} ulp of the largest value")
    problems += impl_problems
    if problems:
        return ctx.failed(name, "; ".join(problems), n=6 + 4 * len(IMPLS))
    return ctx.passed(
        name,
        f"bit-identical for repeated calls and key types (typed keys of {', '.join(IMPLS)} too); eager vs jit "
        f"within {ULPS} ulp",
        n=6 + 4 * len(IMPLS),
    )


@jax.jit
@jax.vmap
def _related(key):
    """Keys a careless initializer might confuse: split children, fold-ins."""
    first, second = jax.random.split(key)  # the keys under test are leaves: never split again
    return jnp.stack([key, first, second, jax.random.fold_in(key, 0x5EED), jax.random.fold_in(key, 0x7FFFFFFF)])


RELATED_VALUES = 2**16  # values per related key (at most 256 base keys): a correlation of 0.03 is z = 7.7
RELATED_NAMES = ["k", "split(k)[0]", "split(k)[1]", "fold_in(k, 0x5EED)", "fold_in(k, 0x7FFFFFFF)"]


def _pair_collision_probability(ctx: CaseContext) -> float:
    """Upper estimate of P(two independent outputs are bit-identical), element by element.

    Real i.i.d. laws in 16-bit dtypes: twice the sum of the rounded law's squared cell masses. Wider
    dtypes: the sum of squared atom masses plus, for the continuous part of mass W,
    W times the largest float cell mass (|x| f(x) 2^-m), at least W * 2^-m (an m-bit uniform source),
    doubled for safety. Complex laws: 2 * 2^-m per element. Orthogonal laws: 2 * 2^-m per degree
    of freedom of the Stiefel manifold (rows*cols - cols(cols+1)/2), 1/2 for a 1x1 matrix (+-scale).
    """
    res = _dtypes.resolution(ctx.dtype)
    if not ctx.law.iid:
        rows, cols = ctx.law.matrix_dims(ctx.shape)
        rows, cols = max(rows, cols), min(rows, cols)
        free = rows * cols - cols * (cols + 1) // 2
        return 0.5 if free == 0 else min(1.0, 2 * res) ** free
    if isinstance(ctx.element_law, ComplexLaw):
        return min(1.0, 2 * res) ** ctx.size
    law = ctx.element_law
    if _dtypes.is_low_precision(ctx.dtype):  # exactly: the rounded law's sum of squared cell masses
        per_element = 2 * float(np.sum(_rounding.rounded_masses(law, ctx.dtype)[1] ** 2))
    else:
        w = law.continuous_mass
        per_element = sum(m * m for _, m in law.atoms)
        if w > 0:
            per_element += 2 * w * max(law.max_xdensity() * res, w * res)
    if per_element <= 0:
        return 0.0
    return math.exp(ctx.size * math.log(per_element)) if per_element < 1 else 1.0


def _duplicate_pairs(rows: np.ndarray) -> int:
    counts = collections.Counter(r.tobytes() for r in rows.reshape(rows.shape[0], -1))
    return sum(c * (c - 1) // 2 for c in counts.values())


def _affordable_keys(count: int, p_pair: float) -> int:
    """The most outputs K <= count whose expected natural coincidences C(K, 2) p_pair stay <= 1."""
    if p_pair < 1e-300:  # 8 / p_pair would overflow: no coincidence is expected among any count
        return count
    return min(count, int((1 + math.sqrt(1 + 8 / p_pair)) / 2))


def _seed_keys(count: int) -> np.ndarray:
    """PRNGKey(0), ..., PRNGKey(count - 1)."""
    return np.asarray(_seeds(np.arange(sampler.bucket(count), dtype=np.uint32)))[:count]


_seeds = jax.jit(jax.vmap(jax.random.PRNGKey))


def _first_word_keys(count: int) -> np.ndarray:
    """[0, 0], [1, 0], ..., [count - 1, 0]: raw keys that differ in their first word alone."""
    keys = np.zeros_like(_seed_keys(count))  # the default implementation's key shape
    keys[:, 0] = np.arange(count, dtype=np.uint32)
    return keys


def _one_word_data(ctx: CaseContext, impl: str, word: int, count: int) -> np.ndarray:
    """Raw data of ``count`` keys of ``impl`` that differ in word ``word`` alone (0, 1, ..., count - 1
    there; the other words those of one key of the case): an initializer that reads only some
    words of a key repeats itself over the keys that differ in another."""
    data = np.repeat(_impl_data(ctx, "key_sensitivity", impl, 1), count, axis=0)
    data[:, word] = np.arange(count, dtype=np.uint32)
    return data


def _key_sets(ctx: CaseContext, seeds: int, pooled: int) -> list[tuple[str, int, Callable[[int], np.ndarray]]]:
    """(label, available keys, outputs of the first k) of the duplicate counts of ``key_sensitivity``."""
    sets: list[tuple[str, int, Callable[[int], np.ndarray]]] = [
        ("derived keys", pooled, lambda k: ctx.pooled[:k]),
        ("seeds PRNGKey(0..) = [0, s]", seeds, lambda k: ctx.draw(_seed_keys(k))),
        ("keys [s, 0] (the first word alone)", seeds, lambda k: ctx.draw(_first_word_keys(k))),
    ]
    for impl in WIDE_IMPLS:
        for word in range(4):
            sets.append((f"typed {impl} keys differing in word {word} alone", seeds, _one_word_draws(ctx, impl, word)))
    return sets


def _one_word_draws(ctx: CaseContext, impl: str, word: int) -> Callable[[int], np.ndarray]:
    return lambda k: _impl_draw(ctx, impl, _one_word_data(ctx, impl, word, k))


def check_key_sensitivity(ctx: CaseContext):
    name = "key_sensitivity"
    count = ctx.profile.keys
    if not ctx.law.random:
        typed = [_impl_draw(ctx, impl, _impl_data(ctx, name, impl, 4)) for impl in IMPLS]
        outputs = np.concatenate([ctx.draws(name, 16), ctx.draw(_seed_keys(16)), *typed])
        same = all(_same_bits(outputs[0], o) for o in outputs[1:])
        if not same:
            return ctx.failed(name, f"{ctx.law!r} is deterministic, but outputs differ between keys", n=len(outputs))
        return ctx.passed(
            name,
            f"the same output for {len(outputs)} different keys (typed keys of {', '.join(IMPLS)} among them), "
            "as a deterministic law promises",
            n=len(outputs),
        )
    if ctx.size == 0:
        raise NotApplicable("a zero-size output has no values that could depend on the key")

    results = []
    wanted = max(1, min(256, math.ceil(min(ctx.profile.n, RELATED_VALUES) / max(ctx.size, 1))))
    base_count = sampler.bucket(wanted)  # a power of two: few compilations of _related
    base = sampler.case_keys(ctx.seed, ctx.case_id(name), base_count)
    related = np.asarray(_related(base)).reshape((base_count * len(RELATED_NAMES),) + base.shape[1:])
    outputs = ctx.draw(related)
    if ctx.size > RELATED_VALUES:  # one output of a large shape: a window of RELATED_VALUES of each
        outputs = outputs[(slice(None), *(slice(0, w) for w in sampler.window(ctx.shape, RELATED_VALUES)))]
    x = _dtypes.as_real_pairs(_dtypes.to_float64(outputs))
    # i.i.d. laws: centred on the sample's own mean (a mean bias is the business of moments, and
    # would read as correlation of every pair); the structured laws (orthogonal) have mean 0
    x = x.reshape((base_count, len(RELATED_NAMES), -1))
    if ctx.law.iid:
        x = x - x.mean()
    for i in range(len(RELATED_NAMES)):
        for j in range(i + 1, len(RELATED_NAMES)):
            results.append(
                stats.self_normalized_z(
                    x[:, i], x[:, j], f"correlation of outputs for {RELATED_NAMES[i]} and {RELATED_NAMES[j]}"
                )
            )
    p_pair = _pair_collision_probability(ctx)
    # Distinct keys, distinct outputs: the pooled draws the other properties use (derived keys, no
    # extra sampling); PRNGKey(0..K-1) = [0, s], whose first words are all 0; and [s, 0] (Keras's
    # seeds), whose second words are all 0: an initializer that seeds from one word of its key
    # (PRNGKey(key_data(key)[1])) repeats itself over the keys that differ in the other word alone;
    # and typed keys of the 4-word implementations (rbg, unsafe_rbg) differing in one word alone.
    pooled = sampler.draws_for(ctx.profile.n, ctx.shape) if ctx.law.iid else ctx.profile.haar_draws
    seeds = max(32, min(count, ctx.profile.n // (4 * max(ctx.size, 1))))
    for label, available, outputs_of in _key_sets(ctx, seeds, pooled):
        k = _affordable_keys(available, p_pair)
        if k >= 32:  # fewer outputs cannot show a key that is ignored in part
            outputs = outputs_of(k)
            results.append(
                stats.poisson_excess(
                    _duplicate_pairs(outputs), k * (k - 1) / 2 * p_pair, f"bit-identical outputs over {k} {label}"
                )
            )
    worst = stats.bonferroni(results)
    return ctx.verdict(name, worst, n=x.size)
