"""The key contract: ``determinism`` (same key, same output) and ``key_sensitivity`` (different
keys, different and independent outputs; or the same output for deterministic laws)."""

from __future__ import annotations

import collections
import math

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


def check_determinism(ctx: CaseContext):
    name = "determinism"
    key = sampler.case_key(ctx.seed, ctx.case_id(name))
    typed = jax.random.wrap_key_data(key)

    call, jitted = ctx.call, ctx.jitted
    jit1, jit2 = jitted(key), jitted(key)
    if not ctx.eager:  # the eager calls of this entry run in its eager dtype (catalog, ci)
        if not _same_bits(jit1, jit2):
            return ctx.failed(name, "two jitted calls with the same key differ", n=2)
        return ctx.passed(
            name, f"bit-identical for repeated jitted calls; eager calls checked in {ctx.eager_dtype}", n=2
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
    if problems:
        return ctx.failed(name, "; ".join(problems), n=6)
    return ctx.passed(name, f"bit-identical for repeated calls and key types; eager vs jit within {ULPS} ulp", n=6)


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


def check_key_sensitivity(ctx: CaseContext):
    name = "key_sensitivity"
    count = ctx.profile.keys
    if not ctx.law.random:
        outputs = np.concatenate([ctx.draws(name, 16), ctx.draw(_seed_keys(16))])
        same = all(_same_bits(outputs[0], o) for o in outputs[1:])
        if not same:
            return ctx.failed(name, f"{ctx.law!r} is deterministic, but outputs differ between keys", n=32)
        return ctx.passed(name, "the same output for 32 different keys, as a deterministic law promises", n=32)
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
    # (PRNGKey(key_data(key)[1])) repeats itself over the keys that differ in the other word alone.
    pooled = sampler.draws_for(ctx.profile.n, ctx.shape) if ctx.law.iid else ctx.profile.haar_draws
    seeds = max(32, min(count, ctx.profile.n // (4 * max(ctx.size, 1))))
    for label, available, outputs_of in (
        ("derived keys", pooled, lambda k: ctx.pooled[:k]),
        ("seeds PRNGKey(0..) = [0, s]", seeds, lambda k: ctx.draw(_seed_keys(k))),
        ("keys [s, 0] (the first word alone)", seeds, lambda k: ctx.draw(_first_word_keys(k))),
    ):
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
