"""``initcheck.audit`` (the function): prove that every value a model creates at init got the key and the law it should.

For each value (parameters, variables of other collections, random state): ``derivation`` (the value
equals its declared initializer applied to the key initcheck derives for it, slice by slice for a
value stacked by a lifted transform, and no other value or slice has that key), then the
statistical properties of the declared law on the value's own elements, its slices pooled
(``independence``, ``bounds``, ``distribution``, ``moments``), or its ``structure``. Every report
says its coverage: how many values had a known law and a modelled derivation.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from initcheck import _defects, _dtypes, derivation, laws
from initcheck import _profiles as profiles
from initcheck import _sampler as sampler
from initcheck._audit import _budget, _contractions, _fan_use, _key_use, _sampling, _signal
from initcheck._frameworks import registry
from initcheck._frameworks.registry import Framework, Recording, declared_name, unwrap
from initcheck._properties import (
    PROPERTIES,
    CaseContext,
    NotApplicable,
    exact_intervals,
    exact_verdict,
    first_problem,
    run_property,
    select_properties,
)
from initcheck._property_registry import AUDIT_PROPERTIES
from initcheck._record import Model, NoForward, Parameter, compare, match, patterns, same_law, tracked
from initcheck._verdict import (
    FAIL,
    PASS,
    SKIP,
    Case,
    Conformance,
    Coverage,
    Verdict,
    import_text,
    literal_text,
    unavailable_text,
)
from initcheck.laws import orthogonality_error

# the audit's own checks of a law's values; the other properties of the registry's values that
# apply to an audit run as check runs them, on the value's elements (its slices pooled)
OWN_CHECKS = ("derivation", "structure", "intent", "effective_fan")
STATISTICAL = {name: PROPERTIES[name] for name in AUDIT_PROPERTIES if name not in OWN_CHECKS}
SIGNAL = "signal"  # the signal profile: selected like a property, it gives no verdict
MIN_VALUES = 20  # fewer values than this in a parameter: too few for a statistical test
UNKNOWN_LAW = "initcheck does not know the law of {}; mark it with @initcheck.expects(law)"


def _no_initializer(*args, **kwargs):
    raise NotApplicable("needs the initializer called again; an audited value is what the model made")


class _ParameterContext(CaseContext):
    """A case whose sample is the value itself: its slices (one draw each), pooled, or a bounded
    sample of them (``_sampling``) when the value is larger than the profile's ``n``."""

    def __init__(
        self,
        parameter: Parameter,
        law: laws.Law,
        profile,
        seed: int,
        call: tuple[str, str],
        take: Callable[[], _sampling.Sample] | None = None,
    ):
        super().__init__(
            _no_initializer,
            parameter.path,
            law,
            parameter.slice_shape,
            _dtypes.canonical(parameter.dtype),
            profile,
            seed,
        )
        self.parameter, self.call_text, self._take = parameter, call, take

    @functools.cached_property
    def taken(self) -> _sampling.Sample:
        """The values the statistical properties test, and how they were taken."""
        p = self.parameter
        if self._take is None or (p.lazy is None and p.size <= self.profile.n):
            return _sampling.Sample(p.slices(), "", p.size)
        return self._take()

    @property
    def sample(self) -> np.ndarray:
        return self.taken.values

    def draws(self, name, count):
        raise NotApplicable("needs several draws; a model has one value per parameter")

    def case(self, name: str) -> Case:
        p = self.parameter
        key = p.derivation + (f" [{p.slice_count} slices]" if p.stacked else "")
        return Case(self.shape, self.dtype_name, key, path=p.path, collection=p.collection)

    def reproduce(self, name: str) -> str:
        setup, call = self.call_text
        options = f"properties=[{name!r}], profile={self.profile.name!r}, seed={self.seed}"
        return f"{setup}print(initcheck.audit({call}, {options}))  # {self.parameter.path}"


def _equal_slices(p: Parameter) -> tuple[int, int] | None:
    """Two slices of a stacked random value that are bit-identical (the transform did not split
    the keys: every layer or member starts the same), or None."""
    if not p.stacked or p.slice_count < 2 or p.law is None or not p.law.random:
        return None
    seen: dict[bytes, int] = {}
    for i, s in enumerate(p.slices()):
        first = seen.setdefault(s.tobytes(), i)
        if first != i:
            return first, i
    return None


def _derivation(ctx: _ParameterContext, framework: Framework, sharing: list[str]) -> Verdict:
    p, name = ctx.parameter, "derivation"
    if p.key_use and not sharing:  # whatever the key bookkeeping says, even where it is not modelled
        return ctx.failed(name, p.key_use, n=p.array.size)
    if p.problem:  # a problem found in the keys stands, whatever could not be compared
        return ctx.failed(name, f"{p.path}: {p.problem}")
    if p.underived:
        return ctx.skipped(name, f"{p.path}: {p.underived}")
    if p.expected is None:  # a deterministic value made without a key: its structure is its check
        return (
            ctx.passed(name, f"{p.path}: {p.derivation}")
            if p.derivation
            else ctx.skipped(name, f"{p.path}: no expected value could be computed")
        )
    equal, how = compare(p.array, p.expected)
    declared = (
        f"its declared initializer {declared_name(p.declared)}"
        if p.declared is not None
        else "the value initcheck derives"
    )
    where = f" ({p.transform})" if p.transform else ""
    if not equal:
        return ctx.failed(name, f"{p.path} differs from {declared} on {p.derivation}{where}: {how}", n=p.array.size)
    if sharing:
        others = ", ".join(repr(o) for o in sharing)
        return ctx.failed(name, f"{p.path} shares its key with {others}: {framework.key_cause()}")
    if pair := _equal_slices(p):
        return ctx.failed(
            name,
            f"{p.path}: slices {pair[0]} and {pair[1]} of {p.slice_count} are identical{where}: "
            "the transform hands every slice the same key (split it over the slices: split_rngs of nn.scan and "
            "nnx.vmap, split_rng of hk.layer_stack, jax.random.split(key, n) into eqx.filter_vmap)",
        )
    slices = f"each of its {p.slice_count} slices " if p.stacked else ""
    note = f"; {p.note}" if p.note else ""
    keys = "; no other value has this key" if p.key is not None else ""
    return ctx.passed(name, f"{slices}equals {declared} on {p.derivation}, {how}{keys}{note}", n=p.array.size)


def _streamed_derivation(ctx: _ParameterContext, framework: Framework, sharing: list[str], memory: int) -> Verdict:
    """``derivation`` of a value too large to make whole: its keys only (``_budget``)."""
    p, name = ctx.parameter, "derivation"
    if p.key_use:
        return ctx.failed(name, p.key_use, n=p.size)
    if p.problem:  # a problem found in the keys stands, whatever could not be compared
        return ctx.failed(name, f"{p.path}: {p.problem}")
    if p.underived:
        return ctx.skipped(name, f"{p.path}: {p.underived}")
    if sharing:
        others = ", ".join(repr(o) for o in sharing)
        return ctx.failed(name, f"{p.path} shares its key with {others}: {framework.key_cause()}")
    problem, note = _budget.streamed_derivation(p, memory)
    return ctx.failed(name, problem) if problem else ctx.skipped(name, note)


def _structure(ctx: _ParameterContext) -> Verdict:
    """The law's structure, slice by slice (one draw per slice: Haar-ness is not testable)."""
    law, name, p = ctx.law, "structure", ctx.parameter
    if not law.has_structure:
        raise NotApplicable("element-wise i.i.d. laws have no structure beyond their elements")
    slices = _dtypes.to_float64(p.slices() if p.lazy is None else _sampling.whole(_sampling.Found(p, 0, 0).slices))
    if problem := first_problem(law, slices, ctx.shape, ctx.dtype, "slice"):
        return ctx.failed(name, problem, n=len(slices))
    if law.exact or law.iid:
        return ctx.passed(name, f"has the structure of {law!r}", n=len(slices))
    error = orthogonality_error(np.stack([law.matrix(x, ctx.shape) for x in slices]))
    return ctx.passed(
        name,
        f"orthogonal to {error / _dtypes.eps(ctx.dtype):.1f} eps (one draw per slice: Haar-ness is not testable)",
        n=len(slices),
    )


def _intent(ctx: _ParameterContext) -> Verdict:
    """The law the author intends (``expect``) against the law of the declared initializer."""
    p, name = ctx.parameter, "intent"
    where = f"{p.path} (expect[{p.intent_pattern!r}])"
    if p.law is None:
        return ctx.passed(
            name,
            f"{where}: the declared initializer's law is unknown; its values are tested against "
            f"the intended {p.intended!r}",
        )
    if p.intended is not None and same_law(p.law, p.intended, ctx.shape, ctx.dtype):
        return ctx.passed(name, f"{where}: the declared initializer promises the intended {p.intended!r}")
    declared = declared_name(p.declared) if p.declared is not None else "its initializer"
    return ctx.failed(
        name, f"{where}: the declared initializer {declared} promises {p.law!r}, but the intended law is {p.intended!r}"
    )


def _law_checks(p: Parameter, ctx: _ParameterContext, checks: list[str]) -> list[Verdict]:
    if p.intended is not None:  # the values are tested against what the author intends
        differs = p.law is not None and not same_law(p.law, p.intended, ctx.shape, ctx.dtype)
        hint = f"{p.hint} The declared initializer promises {p.law!r}; the intended law is {p.intended!r}."
        p = dataclasses.replace(p, law=p.intended, hint=hint if differs else p.hint)
    if p.is_key:
        return [ctx.skipped(n, "a PRNG key (random state): its derivation is its whole promise") for n in checks]
    if p.law is None:
        why = p.unaudited or UNKNOWN_LAW.format(declared_name(p.declared) if p.declared else "this value")
        return [ctx.skipped(n, why) for n in checks]
    if not _dtypes.is_inexact(ctx.dtype) and not p.law.integer_ok:
        return [ctx.skipped(n, f"{ctx.dtype_name} values: only constant and exact laws apply") for n in checks]
    try:
        p.law.check_dtype(ctx.dtype) if _dtypes.is_inexact(ctx.dtype) else None
        refusal = p.law.error_reason(ctx.shape, ctx.dtype)
    except ValueError as exc:
        return [ctx.errored(n, str(exc)) for n in checks]
    if refusal:
        return [ctx.skipped(n, f"{p.law!r} cannot hold for {ctx.shape} {ctx.dtype_name}: {refusal}") for n in checks]
    out = []
    found = _sampling.Found(p, ctx.profile.n, ctx.seed)
    samples = {
        kind: _ParameterContext(p, ctx.law, ctx.profile, ctx.seed, ctx.call_text, functools.partial(found.sample, kind))
        for kind in ("blocks", "elements")
    }
    if found.streamed and p.law.iid:  # made slice by slice: every sample and count in one pass
        found.survey([b for n in checks if (b := exact_intervals(n, samples["elements"])) is not None])
    for name in checks:
        if name == "intent":
            out.append(run_property(_intent, ctx, name))
        elif name == "structure":
            out.append(run_property(_structure, ctx, name))
        elif not p.law.iid:
            out.append(ctx.skipped(name, f"{p.law!r} is not an element-wise i.i.d. law (see structure)"))
        elif p.size < MIN_VALUES:
            out.append(ctx.skipped(name, f"{p.size} values are too few to test (fewer than {MIN_VALUES})"))
        else:
            sampled = samples["blocks" if name == "independence" else "elements"]
            exact = lambda c, name=name: exact_verdict(name, c, found.exact) if c.taken.sampled else None
            verdict = run_property(exact, sampled, name)
            if verdict is None:
                verdict = run_property(STATISTICAL[name], sampled, name)
                if sampled.taken.sampled and verdict.status != SKIP:
                    verdict = dataclasses.replace(verdict, message=f"{verdict.message} (tested on {sampled.taken.how})")
            if verdict.status == FAIL and p.hint:
                verdict = dataclasses.replace(verdict, message=f"{verdict.message}. {p.hint}")
            out.append(verdict)
    return out


def _verdicts(
    p: Parameter, framework: Framework, sharing, names, prof, seed, call, uses: _Uses, memory: int = 0
) -> list[Verdict]:
    tested = p.intended or p.law  # the values are tested against what the author intends, when said
    law = tested if tested is not None and not p.unaudited else laws.Constant(0.0)
    ctx = _ParameterContext(p, law, prof, seed, call)
    names = [n for n in names if n != "intent" or p.intended is not None]  # intent: only where expect= says
    if p.computed:  # one skip for the value, naming what does not apply, not the same reason per property
        why = f"{p.path}: {p.computed}: computed at init, not an initial value ({', '.join(names)} do not apply)"
        return [ctx.skipped(names[0], why)] if names else []
    out = []
    if "derivation" in names:
        if p.unaudited and not p.key_use:
            out.append(ctx.skipped("derivation", f"{p.path}: {p.unaudited}"))
        elif p.lazy is not None:
            out.append(run_property(lambda c: _streamed_derivation(c, framework, sharing, memory), ctx, "derivation"))
        else:
            out.append(run_property(lambda c: _derivation(c, framework, sharing), ctx, "derivation"))
    checks = [n for n in names if n not in ("derivation", _fan_use.NAME)]
    if p.unaudited:
        out += [ctx.skipped(n, f"{p.path}: {p.unaudited}") for n in checks]
    else:
        out += _law_checks(p, ctx, checks)
    if _fan_use.NAME in names and p.unaudited:
        out.append(ctx.skipped(_fan_use.NAME, f"{p.path}: {p.unaudited}"))
    elif _fan_use.NAME in names:
        fan_law = None if p.is_key else tested
        out.append(
            run_property(lambda c: _fan_use.check(c, p, fan_law, uses.found, uses.unavailable), ctx, _fan_use.NAME)
        )
    return out


@dataclasses.dataclass
class _Uses:
    """The forward pass's contractions of each value, or why there are none."""

    found: _contractions.Uses | None = None
    unavailable: str = ""


def _fans_unchecked(parameters: list[Parameter], uses: _Uses, names) -> list[str]:
    """The gap of a model whose forward pass could not be traced while some of its values have a
    law that divides by a fan (``effective_fan`` could not check them), or nothing."""
    if _fan_use.NAME not in names or uses.found is not None or not uses.unavailable:
        return []
    fanned = [
        p.path
        for p in parameters
        if not p.unaudited and not p.is_key and isinstance(p.intended or p.law, laws.VarianceScaling)
    ]
    if not fanned:
        return []
    shown = ", ".join(fanned[:3]) + (f" and {len(fanned) - 3} more" if len(fanned) > 3 else "")
    return [
        f"fans not checked ({_fan_use.NAME}) for {len(fanned)} values whose law divides by a fan ({shown}): {uses.unavailable}"
    ]


def _path_of(key) -> str:
    """A value's path from its ``(collection, path)`` key."""
    return key[1]


def _traced(framework: Framework, target: Model, recording: Recording, names, seed, say) -> tuple[_Uses, Any, str]:
    """The contractions of each value (for ``effective_fan``) and the signal profile, as asked."""
    if _fan_use.NAME not in names and SIGNAL not in names:
        return _Uses(), None, ""
    say("tracing the forward pass: the contractions that use each value")
    try:
        forward = framework.forward(target, recording)
        closed = forward.jaxpr()
    except NoForward as exc:
        return _Uses(unavailable=str(exc)), None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a model initcheck cannot trace is a skip, never a crash
        untraced = (
            f"its forward pass ({type(exc).__name__}: {str(exc)[:300]}) could not be traced; give the inputs it "
            "takes as call_args= (Python values such as a train flag stay fixed), or leave effective_fan out of "
            "properties="
        )
        return _Uses(unavailable=untraced), None, untraced
    stacked = {(p.collection, p.path): p.stacked for p in recording.parameters if p.stacked}
    found = _contractions.find_uses(closed, dict(enumerate(forward.keys)), stacked)
    profile, why = None, ""
    if SIGNAL in names:
        say("profiling the signal at init: second moments forward and backward, layer by layer")
        try:
            with forward.context():
                profile = _signal.profile(closed, forward.values, forward.traced_inputs, forward.keys, _path_of, seed)
        except Exception as exc:  # noqa: BLE001 - the verdicts stand without the profile
            why = f"initcheck could not evaluate the forward pass ({type(exc).__name__}: {str(exc)[:300]})"
    return _Uses(found), profile, why


def _sharing(parameters: list[Parameter]) -> dict[str, list[str]]:
    """path -> the other values (paths, with the slice for stacked ones) whose derived key is its own."""
    keyed = {}
    for p in parameters:
        if p.key is None or p.underived or p.unaudited:
            continue
        keys = np.reshape(p.key, (-1,)) if p.stacked else [p.key]
        for i, key in enumerate(keys):
            keyed[f"{p.path}[{i}]" if p.stacked else p.path] = key
    owner = {name: name.split("[")[0] for name in keyed}
    sharing: dict[str, list[str]] = {}
    for group in derivation.collisions(keyed):
        for name in group:
            others = [o for o in group if owner[o] != owner[name]]
            if others:
                sharing.setdefault(owner[name], []).extend(o for o in others if o not in sharing.get(owner[name], []))
    return sharing


NOTHING_MADE = (
    "nothing was audited: the model's init made no initial values (no parameter, variable or random "
    "state; a model without parameters, or one whose layers are made outside its init)"
)


def coverage(parameters: list[Parameter], unchecked: Sequence[str] = ()) -> Coverage:
    """How many values had a known law and a modelled derivation, and why the others did not;
    ``unchecked``: what else the audit could not check (a line each)."""
    gaps, computed = [], []
    law_known = derived = covered = 0
    for p in parameters:
        if p.computed:
            computed.append(f"{p.path} ({p.collection}): {p.computed}")
            continue
        knows = not p.unaudited and (p.law is not None or p.intended is not None or p.is_key)
        derives = not p.unaudited and not p.underived
        law_known, derived, covered = law_known + knows, derived + derives, covered + (knows and derives)
        if not (knows and derives):
            why = p.unaudited or "; ".join(
                filter(
                    None,
                    [
                        "" if knows else UNKNOWN_LAW.format(declared_name(p.declared) if p.declared else "this value"),
                        "" if derives else f"derivation not modelled: {p.underived}",
                    ],
                )
            )
            gaps.append(f"{p.path} ({p.collection}): {why}")
    if len(parameters) == len(computed):
        gaps.append(NOTHING_MADE)
    gaps += unchecked
    return Coverage(len(parameters) - len(computed), law_known, derived, covered, tuple(gaps), tuple(computed))


def audit(
    model: Any,
    *inputs: Any,
    rng: Any = None,
    expect: Mapping[str, Any] | None = None,
    call_args: tuple | None = None,
    call_kwargs: Mapping[str, Any] | None = None,
    properties: Sequence[str] | None = None,
    profile: str | profiles.Profile = "ci",
    seed: int = 0,
    settings: Mapping[str, Any] | None = None,
    origin: str | None = None,
    progress: Callable[[str], None] | None = None,
    memory: int | str | None = None,
) -> Conformance:
    """Audit every value `model` creates at init.

    The model is initialized eagerly, once. The report's `coverage` says how many values had a
    known law and a modelled key derivation; with less than all, a report that passes is PARTIAL
    (`report.result`). Failures that a known defect of the framework's own initializer explains
    (JAX's 16-bit samplers) are marked with it: still failures, but a report with no other failure
    is KNOWN.

    Args:
        model: A Flax linen Module (`model.init(rng, *inputs)`), an nnx Module class or factory
            (`model(*inputs, rngs=nnx.Rngs(rng))`), a Haiku `Transformed`
            (`model.init(rng, *inputs)`), an Equinox model class or factory taking `key`
            (`model(*inputs, key=key)`), a Keras 3 model (built on `inputs` unless built; Keras
            seeds its initializers itself, so `rng` is not used), or an
            [`initcheck.Model`][initcheck.Model] that carries its inputs, keyword inputs, rng and
            intended laws.
        *inputs: The model's inputs (none beside an `initcheck.Model`).
        rng: An int, a key or a dict of streams (default 0).
        expect: Value path globs (`"**/Dense_1/kernel"`, `"**/bias"`: `*` within a segment, `**`
            across) mapped to the laws the author intends: a matching value is tested against the
            intended law, and the `intent` property fails when its declared initializer promises
            another.
        call_args: The inputs of the forward pass that `effective_fan` and the `signal` profile
            trace (default: the model's inputs for linen and Haiku; an nnx model's inputs are its
            constructor's, so it needs `call_args`).
        call_kwargs: The keyword inputs of that forward pass.
        properties: The properties to check (default: all of `AUDIT_PROPERTIES`), and `"signal"`
            for the signal profile (`report.signal`).
        profile: How hard to look, as for `check`.
        seed: The seed the checks' keys derive from.
        settings: The framework settings that change keys, by name, to model the derivation with
            (`{"flax_fix_rng_separator": True}` for linen, `{"haiku_rng_reserve_size": 2}` for
            Haiku; default: each framework's config in force; the names are the lock's settings;
            JAX's own are read, not modelled).
        origin: Python that defines `target` (the model to audit), used in reproduction snippets;
            by default they import the model from the module that holds it and write its inputs
            (arrays of one repeated value), rng and `expect` out, or say what they cannot rebuild.
        progress: Called with a line of text as the audit goes.
        memory: The most memory the audit may use: bytes, or text such as `"6GB"` (default: the
            `initcheck.Model`'s, else 80% of the machine's free memory). A model whose in-memory
            audit would not fit is recorded abstractly (`jax.eval_shape`) and its values are made
            and checked one at a time (Flax linen, nnx, Haiku and Equinox; see docs/audit.md,
            "Large models").

    Returns:
        Every verdict on every value, with the coverage (and the signal profile when asked for).

    Raises:
        TypeError: `model` is not one of the kinds above (or an Equinox or nnx model that is
            already built), inputs are passed beside an `initcheck.Model`, or `expect` is not a
            mapping of path globs to laws.
        ValueError: A pattern of `expect` matches nothing, or `properties`, `profile` or a name
            in `settings` is unknown, or `memory` is unreadable or too small, or the model does
            not fit in it and its framework has no abstract path.

    Example:
        ```python
        import flax.linen as nn
        import jax.numpy as jnp
        import initcheck
        from initcheck import laws

        model = nn.Sequential([nn.Dense(64), nn.relu, nn.Dense(10)])
        report = initcheck.audit(
            model, jnp.ones((1, 32)), expect={"**/layers_2/kernel": laws.VarianceScaling(1.0, "fan_in", "truncated_normal")}
        )
        print(report.result)
        ```
    """
    started = time.perf_counter()
    say = progress or (lambda line: None)
    prof = profiles.get(profile)
    names = select_properties(properties, (*AUDIT_PROPERTIES, SIGNAL), refusal="{} do not apply to an audit")
    if isinstance(model, Model):
        if inputs:
            raise TypeError("model=initcheck.Model(...) carries its inputs; pass none beside it")
        target = model
    else:
        target = Model(model, inputs)
    if expect is not None:
        patterns(expect)  # refused now, with the fix, before the model is built
    target = dataclasses.replace(
        target,
        rng=target.rng if rng is None else rng,
        expect={**target.expect, **(expect or {})},
        call_args=target.call_args if call_args is None else call_args,
        call_kwargs={**target.call_kwargs, **(call_kwargs or {})},
    )
    budget = _budget.parse(memory if memory is not None else target.memory)
    framework = registry.of_model(target.model)
    given = registry.checked_settings(settings, framework)
    mode = _budget.choose_mode(framework, target, budget, say)
    abstract = mode == _budget.BY_VALUE
    if mode != _budget.EAGER:
        other = _key_use.other_rng(target.rng)
        assert framework.record_abstract is not None  # (_mode chose an abstract mode)
        recording = framework.record_abstract(target, given, other, whole=mode == _budget.ONE_INIT)
    else:
        say(f"initializing {framework.describe(target.model)} and watching every value it creates")
        recording = framework.record(target, given)
    parameters = recording.parameters
    intended = match(target.expect, [p.path for p in parameters]) if target.expect else {}
    parameters = [
        dataclasses.replace(p, intended=intended[p.path][1], intent_pattern=intended[p.path][0])
        if p.path in intended
        else p
        for p in parameters
    ]
    if abstract:  # integers and keys stay fixed in the forward pass: they are made before it is traced
        limit = max(_budget.value_limit(budget), _budget.FIXED_VALUES)
        parameters = [p if tracked(p) else (_budget.made(p, limit) or p) for p in parameters]
    if mode == _budget.ONE_INIT:
        say(f"initializing {framework.describe(target.model)} with one jitted init of the whole model")
        parameters = [_budget.made_whole(p) for p in parameters]
    if "derivation" in names and mode == _budget.EAGER:
        parameters = _key_use_checked(parameters, framework, target, given, say)
    elif "derivation" in names and mode == _budget.ONE_INIT:  # from another root: checked value by value
        parameters = _with_key_use(parameters, _key_use.copies([p for p in parameters if p.lazy is None], {}))
    traced = [n for n in names if n != SIGNAL] if abstract else names
    uses, signal, no_signal = _traced(framework, target, Recording(parameters, recording.built), traced, seed, say)
    if abstract and SIGNAL in names:
        no_signal = (
            "the signal profile runs the forward pass on every value at once, which does not fit the memory budget "
            f"({_budget.gigabytes(budget)}); audit with a larger memory= to profile it"
        )
    say(f"recorded {len(parameters)} values; checking them")
    sharing = _sharing(parameters)
    verdicts = []
    call = _call_text(target, origin)
    made: list[_key_use.Prefix] = []  # the values made one at a time, compared across values after the loop
    for i, p in enumerate(parameters, 1):
        defects = registry.sampling_defects(unwrap(p.declared)) or registry.sampling_defects(p.drawn_by)
        if mode != _budget.EAGER:
            p = _budget.made_checked(p, framework, budget if abstract else None, "derivation" in names, say)
            made += _key_use.prefixes(p) if "derivation" in names else []
        checked = _verdicts(
            p, framework, sharing.get(p.path, []), [n for n in names if n != SIGNAL], prof, seed, call, uses, budget
        )
        verdicts += _defects.mark(checked, defects)
        if progress is not None and (i == len(parameters) or i % 25 == 0):
            say(f"checked {i}/{len(parameters)} values")
    setup, text = call
    again = f"{setup}print(initcheck.audit({text}, properties=['derivation'], profile={prof.name!r}, seed={seed}))"
    verdicts = _with_copies(verdicts, _key_use.prefix_copies(made), again)
    return Conformance(
        framework.describe(target.model),
        "the declared initializer of each value",
        verdicts,
        prof.name,
        seed,
        sampler.device_description(),
        seconds=time.perf_counter() - started,
        coverage=coverage(parameters, _fans_unchecked(parameters, uses, names)),
        signal=signal,
        signal_unavailable=no_signal,
    )


def _key_use_checked(
    parameters: list[Parameter], framework: Framework, target: Model, settings: Mapping[str, Any], say
) -> list[Parameter]:
    """``parameters`` with ``key_use`` set where a random value ignores the model's key: it comes
    out the same from another root key, or copies another random value (``_key_use``)."""
    if not framework.reinitializes:  # a built model cannot be made again: only copies are looked for
        return _with_key_use(parameters, _key_use.copies(parameters, {}))
    say("initializing it again from another root key: every random value must change")
    other = dataclasses.replace(target, rng=_key_use.other_rng(target.rng))
    again = {p.path: p for p in framework.record(other, settings).parameters}
    unchanged = _key_use.unchanged(parameters, again, framework.ignored_key_cause())
    fixed = {}
    if candidates := _key_use.fixed_seed_candidates(parameters, again):
        say(
            "initializing it again with the keys it makes from seeds moved: values made without its key must not change"
        )
        with _key_use.salted_seeds():
            salted = {p.path: p for p in framework.record(target, settings).parameters}
        fixed = _key_use.fixed_seeds(candidates, salted)
    return _with_key_use(parameters, {**_key_use.copies(parameters, again), **unchanged, **fixed})


def _with_key_use(parameters: list[Parameter], problems: dict[str, str]) -> list[Parameter]:
    return [dataclasses.replace(p, key_use=problems[p.path]) if p.path in problems else p for p in parameters]


def _with_copies(verdicts: list[Verdict], problems: dict[str, str], reproduce: str) -> list[Verdict]:
    """``verdicts`` with the ``derivation`` (passed or skipped) of each value in ``problems`` failed: values made
    one at a time (``BY_VALUE``, ``ONE_INIT``), found copying another only once all were made."""
    return [
        dataclasses.replace(
            v, status=FAIL, statistic=None, pvalue=None, alpha=0.0, message=problems[v.case.path], reproduce=reproduce
        )
        if v.property == "derivation" and v.status in (PASS, SKIP) and v.case.path in problems
        else v
        for v in verdicts
    ]


def _call_text(target: Model, origin: str | None) -> tuple[str, str]:
    """(setup, call) of a reproduction snippet: `origin` when it defines `target`; else `target`
    rebuilt from the model's import and its literal inputs (`_rebuilt`), or a setup that says
    what cannot be rebuilt and stops there (never undefined names)."""
    rng = target.rng
    if origin:
        return f"import initcheck\n{origin}\n", f"target, rng={rng!r}" if isinstance(rng, (int, dict)) else "target"
    return f"import jax.numpy as jnp, initcheck\nfrom initcheck.laws import *\n{_rebuilt(target)}\n", "target"


def _rebuilt(target: Model) -> str:
    """Python that defines `target`, a `Model` equal to `target`: the model imported from the
    module that holds it, every other field a literal (`literal_text`); or the stand-in of what
    cannot be (`unavailable_text`)."""
    how = "give initcheck.audit origin= (Python that defines target, the initcheck.Model to audit)"
    model = import_text(target.model, "model")
    if model is None:
        return unavailable_text("model", f"the model {type(target.model).__name__}", how)
    fields, missing = [], []
    for field in dataclasses.fields(Model)[1:]:
        value = getattr(target, field.name)
        default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
        if value is default or (isinstance(value, (Mapping, tuple)) and value == default):
            continue
        text = literal_text(dict(value) if isinstance(value, Mapping) else value)
        if text is None:
            missing.append(field.name)
        fields.append(f"{field.name}={text}")
    if missing:
        return unavailable_text("target", f"the initcheck.Model of the model, its {', '.join(missing)}", how)
    return f"{model}\ntarget = initcheck.Model({', '.join(['model', *fields])})"


Signal = _signal.Signal
SignalLayer = _signal.SignalLayer
parse_memory = _budget.parse

__all__ = [
    "AUDIT_PROPERTIES",
    "SIGNAL",
    "Model",
    "Parameter",
    "Signal",
    "SignalLayer",
    "audit",
    "coverage",
    "parse_memory",
]
