"""Check many catalog entries on all cores: one process per core, each with its own JAX.

Entries hold closures, which do not pickle, so workers rebuild the catalog and receive indices;
results (plain data) come back as they finish.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Callable, Sequence

_ENTRIES: list | None = None


def _start(frameworks, x64: bool) -> None:
    global _ENTRIES
    import jax

    if x64:
        jax.config.update("jax_enable_x64", True)
    from initcheck._catalog import catalog

    _ENTRIES = catalog(frameworks)


def _check(index: int, profile, seed: int, dtypes: Sequence[str]):
    from initcheck._catalog import check_entry

    return index, check_entry(_ENTRIES[index], profile=profile, seed=seed, dtypes=dtypes)


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def check_entries(frameworks, indices_and_dtypes: Sequence[tuple[int, Sequence[str]]], *, x64: bool, profile,
                  seed: int, jobs: int, on_result: Callable[[int, object], None]) -> None:
    """Check ``catalog(frameworks)[i]`` in ``dtypes`` for each ``(i, dtypes)`` on ``jobs`` processes
    (in this process when ``jobs == 1``), calling ``on_result(i, triage)`` as each one finishes."""
    if jobs <= 1:
        _start(frameworks, x64)
        for index, dtypes in indices_and_dtypes:
            on_result(*_check(index, profile, seed, dtypes))
        return
    context = multiprocessing.get_context("spawn")  # a forked JAX runtime is not safe
    with concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context, initializer=_start,
                                                initargs=(frameworks, x64)) as pool:
        futures = [pool.submit(_check, index, profile, seed, dtypes) for index, dtypes in indices_and_dtypes]
        for future in concurrent.futures.as_completed(futures):
            on_result(*future.result())
