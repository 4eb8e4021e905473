"""How hard to look: sample sizes, numbers of cases and the per-verdict false-alarm level."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Profile:
    """``n`` pooled values per statistical case; ``alpha`` per statistical verdict (sub-tests
    share it by Bonferroni), so ``k`` verdicts have a family-wise false-alarm rate <= k * alpha.
    ``cases`` shapes are drawn per initializer; a catalog check pairs them with the entry's dtypes
    (each shape and each dtype once at least) unless ``full_grid`` asks for every combination."""

    name: str
    n: int
    cases: int
    alpha: float
    keys: int
    haar_draws: int
    time_limit_s: float = 120.0
    max_output_bytes: int = 2**30
    chunk_elements: int = 2**22
    full_grid: bool = False


PROFILES = {
    "quick": Profile("quick", n=2**16, cases=2, alpha=1e-6, keys=256, haar_draws=64),
    "ci": Profile("ci", n=2**18, cases=3, alpha=1e-7, keys=1000, haar_draws=256),
    "thorough": Profile("thorough", n=2**22, cases=8, alpha=1e-8, keys=4000, haar_draws=1024, full_grid=True),
}


def get(profile: str | Profile) -> Profile:
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f"profile={profile!r} is not one of {', '.join(PROFILES)}") from None
