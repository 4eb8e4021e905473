"""``effective_fan``: the fan a layer contracts its parameter over is the fan its law divides by.

Variance scaling keeps a layer's output variance at ``scale`` only when the fan ``n`` of its mode
(fan_in, fan_out, their mean or geometric mean) is the one the layer uses: with fans ``n_law`` (what
the law computes on the shape the initializer drew) and ``n_use`` (what the contraction sums over,
see ``_contractions``), the output variance (fan_in), the gradient variance (fan_out) or both
(fan_avg) are ``x n_use / n_law`` what the law promises. Exact: no sampling, one verdict per value,
failing when any of its contractions has ``n_use != n_law``. A stacked value (an ensemble's members,
a scan's layers) is one kernel per slice: its stack axes count in neither ``n_use`` nor ``n_law``.
"""

from __future__ import annotations

from initcheck import _dtypes, _fans, laws
from initcheck._audit._contractions import Use, Uses
from initcheck._properties import NotApplicable
from initcheck._record import Parameter
from initcheck._verdict import Verdict

NAME = "effective_fan"
EFFECT = {
    "fan_in": "output variance",
    "fan_out": "gradient variance",
    "fan_avg": "forward and gradient variance",
    "fan_geo_avg": "forward and gradient variance",
}


def _axes(axes: tuple[int, ...]) -> str:
    return f"axis {axes[0]}" if len(axes) == 1 else f"axes {', '.join(map(str, axes))}" if axes else "no axis"


def _denominator(law: laws.VarianceScaling, fan_in: float, fan_out: float) -> float:
    n = _fans.fan_denominator(law.mode, fan_in, fan_out)
    return max(1.0, n) if law.fans == "haiku" else n


def describe(use: Use) -> str:
    """What a contraction does with the parameter, in words."""
    kept = f", keeps its {_axes(use.kept)} ({use.fan_out})" if use.kept else ""
    batch = f", maps over its {_axes(use.batch)}" if use.batch else ""
    stacked = f", one kernel per slice of its stacked {_axes(use.stacked)}" if use.stacked else ""
    within = f" (inside {' > '.join(use.within)})" if use.within else ""
    return f"`{use.spec}` contracts over its {_axes(use.contracted)} ({use.fan_in}){kept}{batch}{stacked}{within}"


def _mismatch(use: Use, law: laws.VarianceScaling, n_law: float, shape_text: str) -> tuple[str, float] | None:
    n_use = _denominator(law, use.fan_in, use.fan_out)
    if abs(n_use - n_law) <= 1e-9 * max(n_use, n_law):
        return None
    gain = n_use / n_law
    mode = law.mode
    if mode == "fan_in":
        what = f"`{use.spec}` contracts over its {_axes(use.contracted)} ({use.fan_in})"
    elif mode == "fan_out":
        what = f"`{use.spec}` keeps its {_axes(use.kept)} ({use.fan_out})"
    else:
        what = f"{describe(use)}: {mode} {n_use:g}"
    where = f" (inside {' > '.join(use.within)})" if use.within and mode in ("fan_in", "fan_out") else ""
    batch = ""
    if use.batch and abs(n_law - n_use * use.batch_size) <= 1e-9 * n_law:
        batch = f": the law counts its batch {_axes(use.batch)} ({use.batch_size}) in the fan"
    return (
        f"{what}{where} but the law divides by {n_law:g} ({mode} of {shape_text}){batch}: {EFFECT[mode]} x{gain:.4g}",
        gain,
    )


def _scaled_by_its_fan(law: laws.Law, uses: list[Use]) -> bool:
    """A zero-mean (truncated) normal law whose stddev is 1/sqrt(fan_in) of every contraction that
    uses the value: a fan rule applied by the layer itself (Haiku's defaults compute it so)."""
    if not isinstance(law, (laws.Normal, laws.TruncatedNormal)) or law.mean != 0:
        return False
    return all(abs(law.std**2 * u.fan_in - 1) <= 1e-6 for u in uses)


def check(ctx, p: Parameter, law: laws.Law | None, found: Uses | None, unavailable: str) -> Verdict:
    """The ``effective_fan`` verdict of value ``p`` tested against ``law``."""
    if p.is_key or not _dtypes.is_inexact(p.dtype):
        raise NotApplicable(f"{'a PRNG key' if p.is_key else f'{p.dtype} values'}: no fan applies")
    if found is None:
        raise NotApplicable(unavailable)
    key = (p.collection, p.path)
    uses = found.contractions.get(key, [])
    consumers = found.consumers.get(key, [])
    if not uses:
        if consumers:
            raise NotApplicable(
                f"{p.path} feeds no contraction, only {', '.join(consumers)} (a bias, a scale, an embedding looked "
                "up by gather, or a kernel computed on before use): no fan to compare"
            )
        raise NotApplicable(f"{p.path} is not used by the forward pass that was traced")
    used = "; ".join(describe(u) for u in uses)
    if law is None:
        raise NotApplicable(f"its law is unknown, so there is no fan to compare ({used})")
    if not isinstance(law, laws.VarianceScaling):
        if isinstance(law, (laws.Normal, laws.TruncatedNormal)) and _scaled_by_its_fan(law, uses):
            return ctx.passed(
                NAME,
                f"{used}: stddev {law.std:g} = 1/sqrt({uses[0].fan_in}), the fan_in it contracts over "
                "(the rule of Haiku's Linear and Conv defaults)",
                n=len(uses),
            )
        raise NotApplicable(f"not applicable: {law!r} has no fan: it is not variance scaling ({used})")
    shape = p.slice_shape
    drawn = p.draw_shape is not None and tuple(p.draw_shape) != tuple(p.shape)
    shape_text = f"the shape {tuple(shape)} the initializer drew" if drawn else f"{tuple(shape)}"
    n_law = _denominator(law, *law.fan(shape))
    problems = [m for u in uses if (m := _mismatch(u, law, n_law, shape_text))]
    if problems:
        stored = f"{p.path} {tuple(p.shape)}"
        reshaped = f"; the layer stores the draw reshaped to {tuple(p.shape)}" if drawn else ""
        message = f"{stored}: " + "; ".join(text for text, _ in problems) + reshaped
        return ctx.failed(NAME, message, n=len(uses), statistic=problems[0][1])
    return ctx.passed(NAME, f"{used}: {law.mode} {n_law:g}, as the law divides", n=len(uses))
