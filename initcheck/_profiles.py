"""How hard to look: sample sizes, numbers of cases and the per-verdict false-alarm level."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Profile:
    """How hard to look: sample sizes, numbers of cases and the per-verdict false-alarm level.

    Sub-tests share a verdict's `alpha` by Bonferroni, so `k` statistical verdicts have a
    family-wise false-alarm rate <= k * alpha. The built-in profiles are `"quick"`, `"ci"` (the
    default) and `"thorough"`; `profile=` takes a name or a `Profile`.

    Args:
        name: The profile's name, shown in reports.
        n: Pooled values per statistical case.
        cases: Shapes drawn per initializer; a catalog check pairs them with the entry's dtypes
            (each shape and each dtype once at least) unless `full_grid` asks for every
            combination.
        alpha: The false-alarm level per statistical verdict.
        keys: Keys the `key_sensitivity` property compares.
        haar_draws: Draws of a structured (e.g. orthogonal) law that `structure` checks, whose
            matrices are then tested Haar-distributed.
        time_limit_s: How long one call of the initializer may take, in seconds.
        max_output_bytes: The largest output a case may ask for; larger ones fail the contract
            before sampling.
        chunk_elements: At most this many values per compiled call (the draws of a case are
            batched).
        full_grid: Check every shape in every dtype.

    Example:
        ```python
        import dataclasses

        from initcheck import Profile, check

        lenient = Profile("lenient", n=2**16, cases=2, alpha=1e-6, keys=256, haar_draws=64)
        check(init, law, profile=dataclasses.replace(lenient, time_limit_s=600.0))
        ```
    """

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
    """The profile named `profile`, or `profile` itself.

    Args:
        profile: A profile or the name of a built-in one.

    Returns:
        The profile.

    Raises:
        ValueError: No built-in profile has that name.
    """
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(f"profile={profile!r} is not one of {', '.join(PROFILES)}") from None
