"""``initcheck.audit``: prove that every parameter of a model got the key and the law it should.

For each parameter: ``derivation`` (the value equals its declared initializer applied to the key
initcheck derives for it, and no other parameter has that key), then the statistical properties of
the declared law on the parameter's own values (``independence``, ``bounds``, ``distribution``,
``moments``) or its ``structure``.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import time

import numpy as np

from initcheck import _dtypes, adapters, derivation, laws, profiles, sampler
from initcheck.audit._parameter import Parameter
from initcheck.properties import NotApplicable, run_property, select_properties
from initcheck.properties._context import CaseContext
from initcheck.properties.elementwise import check_bounds, check_distribution, check_independence, check_moments
from initcheck.properties.structure import ORTHO_EPS, dtype_eps, orthogonality_error
from initcheck.verdict import FAIL, Case, Conformance, Verdict

STATISTICAL = {"independence": check_independence, "bounds": check_bounds,
               "distribution": check_distribution, "moments": check_moments}
AUDIT_PROPERTIES = ("derivation", *STATISTICAL, "structure")
MIN_VALUES = 20  # fewer values than this in a parameter: too few for a statistical test


def _framework(model) -> str:
    def is_a(module: str, *names: str) -> bool:
        mod = sys.modules.get(module)
        return mod is not None and any(isinstance(model, getattr(mod, n)) for n in names if hasattr(mod, n))

    if is_a("flax.linen", "Module"):
        return "flax.linen"
    if is_a("haiku", "Transformed", "TransformedWithState"):
        return "haiku"
    nnx = sys.modules.get("flax.nnx")
    if nnx is not None and isinstance(model, nnx.Module):
        raise TypeError(f"model={type(model).__name__}(...) is an nnx Module that is already built; pass its "
                        "class (with the constructor's arguments as inputs) or a factory taking rngs=, so that "
                        "initcheck can watch the construction")
    if nnx is not None and callable(model):
        return "flax.nnx"
    raise TypeError(f"model={model!r} is not a Flax linen Module, an nnx Module class or factory, or a Haiku "
                    "Transformed; wrap a Haiku function with hk.transform(f) first")


def _record(framework: str, model, inputs, rng, *, fix_separator, reserve_size) -> list[Parameter]:
    if framework == "flax.linen":
        from initcheck.audit import _linen

        return _linen.record(model, inputs, rng, fix_separator=fix_separator)
    if framework == "haiku":
        from initcheck.audit import _haiku

        return _haiku.record(model, inputs, rng, reserve_size=reserve_size)
    from initcheck.audit import _nnx

    return _nnx.record(model, inputs, rng)[1]


def _name(model, framework: str) -> str:
    if framework == "haiku":
        return "haiku.Transformed"
    target = model if inspect.isclass(model) or inspect.isfunction(model) else type(model)
    return f"{framework} {getattr(target, '__qualname__', repr(target))}"


class _ParameterContext(CaseContext):
    """A case whose sample is the parameter itself (one draw, ``parameter.shape``)."""

    def __init__(self, parameter: Parameter, law: laws.Law, profile, seed: int, call: str):
        super().__init__(None, parameter.path, law, parameter.shape, _dtypes.canonical(parameter.dtype), profile, seed)
        self.parameter, self.call_text = parameter, call

    @property
    def sample(self) -> np.ndarray:
        return self.parameter.array[None]

    def draws(self, name, count):
        raise NotApplicable("needs several draws; a model has one value per parameter")

    def case(self, name: str) -> Case:
        return Case(self.shape, self.dtype_name, self.parameter.derivation, path=self.parameter.path)

    def reproduce(self, name: str) -> str:
        return f"print(initcheck.audit({self.call_text}, properties=[{name!r}]))  # {self.parameter.path}"


def _key_cause(framework: str) -> str:
    if framework == "flax.linen":
        return ("Flax linen hashes the module path and the counter without separators, so both hash the same "
                "bytes (flax issue 2157); set flax.config.update('flax_fix_rng_separator', True) or rename a module")
    return "the framework handed both the same key"


def _derivation(ctx: _ParameterContext, framework: str, sharing: list[Parameter]) -> Verdict:
    p, name = ctx.parameter, "derivation"
    if p.underived:
        return ctx.skipped(name, p.underived)
    if p.problem:
        return ctx.failed(name, f"{p.path}: {p.problem}")
    actual, expected = p.array, np.asarray(p.expected)
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        return ctx.failed(name, f"{p.path} is {actual.dtype}{list(actual.shape)} but its declared initializer "
                                f"gives {expected.dtype}{list(expected.shape)} on the derived key")
    if not np.array_equal(actual, expected, equal_nan=True):
        diff = np.abs(_dtypes.to_float64(actual) - _dtypes.to_float64(expected))
        return ctx.failed(name, f"{p.path} differs from its declared initializer {adapters.describe(p.declared)} "
                                f"applied to the derived key ({p.derivation}): {int(np.count_nonzero(diff))} of "
                                f"{actual.size} elements, by up to {float(np.max(diff)):.3g}", n=actual.size)
    if sharing:
        others = ", ".join(repr(o.path) for o in sharing)
        return ctx.failed(name, f"{p.path} shares its key with {others}: {_key_cause(framework)}")
    return ctx.passed(name, f"equals {adapters.describe(p.declared)} on {p.derivation}; no other parameter has "
                            "this key", n=actual.size)


def _structure(ctx: _ParameterContext) -> Verdict:
    law, x, name = ctx.law, _dtypes.to_float64(ctx.parameter.array), "structure"
    if law.kind == "iid":
        if not law.has_structure:
            raise NotApplicable("element-wise i.i.d. laws have no structure beyond their elements")
        problem = law.structure_problem(x, ctx.dtype)
        return ctx.failed(name, problem) if problem else ctx.passed(name, f"has the structure of {law!r}", n=1)
    if law.kind in ("constant", "identity"):
        want = np.full(ctx.shape, law.value) if law.kind == "constant" else law.expected(ctx.shape, ctx.dtype)
        want = _dtypes.to_float64(np.asarray(want, np.float64).astype(ctx.dtype))
        if not np.array_equal(x, want):
            return ctx.failed(name, f"{int(np.sum(x != want))} of {x.size} elements differ from {law!r}", n=1)
        return ctx.passed(name, f"exactly {law!r}", n=1)
    if law.kind == "delta_orthogonal":
        centre = law.centre(ctx.shape)
        rest = x.copy()
        rest[centre] = 0
        if np.any(rest):
            return ctx.failed(name, f"{int(np.count_nonzero(rest))} non-zero values off the centre tap {centre}", n=1)
        x = x[centre]
    error = orthogonality_error(laws.matrix_view(x, law.column_axis)[None] / law.scale)
    eps = dtype_eps(ctx.dtype)
    if error > ORTHO_EPS * eps:
        return ctx.failed(name, f"not orthogonal: max |QᵀQ/scale² - I| = {error:.3g}", n=1, statistic=error)
    return ctx.passed(name, f"orthogonal to {error / eps:.1f} eps (one draw: Haar-ness is not testable)", n=1)


def _verdicts(p: Parameter, framework: str, sharing, names, prof, seed, call) -> list[Verdict]:
    law = p.law if p.law is not None else laws.Constant(0.0)
    ctx = _ParameterContext(p, law, prof, seed, call)
    out = []
    if "derivation" in names:
        out.append(ctx.skipped("derivation", f"{p.path}: {p.unaudited}") if p.unaudited else
                   run_property(lambda c: _derivation(c, framework, sharing), ctx, "derivation"))
    checks = [n for n in names if n != "derivation"]
    if not checks:
        return out
    if p.unaudited or p.law is None:
        why = p.unaudited or (f"initcheck does not know the law of {adapters.describe(p.declared)}; mark it "
                              "with @initcheck.expects(law)")
        return out + [ctx.skipped(n, why) for n in checks]
    try:
        p.law.check_dtype(ctx.dtype)
        refusal = p.law.error_reason(p.shape, ctx.dtype)
    except ValueError as exc:
        return out + [ctx.errored(n, str(exc)) for n in checks]
    if refusal:
        return out + [ctx.skipped(n, f"{p.law!r} cannot hold for {p.shape} {ctx.dtype_name}: {refusal}")
                      for n in checks]
    for name in checks:
        if name == "structure":
            out.append(run_property(_structure, ctx, name))
        elif p.law.kind != "iid":
            out.append(ctx.skipped(name, f"{p.law!r} is not an element-wise i.i.d. law (see structure)"))
        elif p.array.size < MIN_VALUES:
            out.append(ctx.skipped(name, f"{p.array.size} values are too few to test (fewer than {MIN_VALUES})"))
        else:
            verdict = run_property(STATISTICAL[name], ctx, name)
            if verdict.status == FAIL and p.hint:
                verdict = dataclasses.replace(verdict, message=f"{verdict.message}. {p.hint}")
            out.append(verdict)
    return out


def audit(model, *inputs, rng=0, properties=None, profile="ci", seed: int = 0,
          fix_separator: bool | None = None, reserve_size: int | None = None) -> Conformance:
    """Audit every parameter of ``model``: a Flax linen Module (``model.init(rng, *inputs)``), an nnx
    Module class or factory (``model(*inputs, rngs=nnx.Rngs(rng))``; ``rng`` may be a dict of
    streams) or a Haiku ``Transformed`` (``model.init(rng, *inputs)``).

    ``fix_separator``: the linen ``flax_fix_rng_separator`` flag in force (default: Flax's config);
    ``reserve_size``: Haiku's ``rng_reserve_size`` (default: Haiku's config). The model is initialized eagerly, once.
    """
    started = time.perf_counter()
    prof = profiles.get(profile)
    names = select_properties(properties, AUDIT_PROPERTIES, refusal="{} do not apply to an audit")
    framework = _framework(model)
    parameters = _record(framework, model, inputs, rng, fix_separator=fix_separator, reserve_size=reserve_size)
    keyed = {p.path: p.key for p in parameters if p.key is not None and not (p.underived or p.unaudited)}
    by_path = {p.path: p for p in parameters}
    sharing = {}
    for group in derivation.collisions(keyed):
        for path in group:
            sharing[path] = [by_path[o] for o in group if o != path]
    call = f"model, {'*inputs, ' if inputs else ''}rng={rng!r}" if isinstance(rng, int) else "model, *inputs, rng=rng"
    verdicts = []
    for p in parameters:
        verdicts += _verdicts(p, framework, sharing.get(p.path, []), names, prof, seed, call)
    return Conformance(_name(model, framework), "the declared initializer of each parameter", verdicts, prof.name,
                       seed, sampler.device_description(), seconds=time.perf_counter() - started)


__all__ = ["AUDIT_PROPERTIES", "Parameter", "audit"]
