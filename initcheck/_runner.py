"""Check many catalog entries on all cores: one process per core, each with its own JAX.

Entries hold closures, which do not pickle, so workers rebuild the catalog and receive indices;
results (plain data) come back as they finish. Each worker runs on its own share of the CPUs:
an unpinned JAX process keeps every core busy (XLA's threads wait by spinning), so two unpinned
workers on two cores slowed each other down to the speed of one process.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import multiprocessing
import os
import pathlib
import warnings
from collections.abc import Callable, Iterator, Sequence

import jax

from initcheck import _document as document
from initcheck import _html as html
from initcheck import _plots as drawing
from initcheck._catalog import CatalogEntry, catalog, check_entry, eager_dtype_of
from initcheck._defects import Triage

_ENTRIES: list[CatalogEntry] = []  # this worker's catalog, built once by _start


def _start(frameworks, x64: bool, shares=None) -> None:
    """Set up a worker: its CPUs (taken from ``shares``, a queue of CPU sets), JAX, the catalog."""
    global _ENTRIES
    if shares is not None:
        run_on(shares.get())

    if x64:
        jax.config.update("jax_enable_x64", True)

    _ENTRIES = catalog(frameworks)


def _check(index: int, profile, seed: int, dtypes: Sequence[str], plots: bool):
    """``(index, triage, svgs, warned)``: the entry's check, when ``plots`` the SVGs of its
    report's plots by title (drawn here, where the cores are already busy, rather than all at the
    end), and the warnings raised meanwhile (``warnings_of``), counted instead of printed."""

    entry = _ENTRIES[index]
    eager = eager_dtype_of(index, list(dtypes or entry.dtypes), profile)
    with warnings_of() as warned:
        triage = check_entry(entry, profile=profile, seed=seed, dtypes=dtypes, eager_dtype=eager)
        svgs = {}
        if plots:
            svgs = drawing.draw_all(html.plot_requests(document.catalog_target(_ENTRIES[index], triage)))
    return index, triage, svgs, warned


_PACKAGE = pathlib.Path(__file__).resolve().parent


@functools.lru_cache(maxsize=256)
def _where(filename: str, lineno: int) -> tuple[str, bool]:
    """``(package/path.py:line, raised by initcheck itself)`` for a warning's location."""
    path = pathlib.Path(filename)
    if path.resolve().is_relative_to(_PACKAGE):
        return f"initcheck/{path.resolve().relative_to(_PACKAGE).as_posix()}:{lineno}", True
    parts = path.parts
    cut = max((i + 1 for i, part in enumerate(parts) if part in ("site-packages", "dist-packages")), default=0)
    return f"{'/'.join(parts[cut:]) if cut else path.name}:{lineno}", False


@contextlib.contextmanager
def warnings_of() -> Iterator[list[dict]]:
    """The warnings raised inside the block (by the frameworks, numpy, ... or initcheck), counted
    instead of printed: one dict per distinct ``(category, message, where)``, with ``count`` and
    ``own`` (raised by initcheck's own code: a bug of initcheck)."""
    found: dict[tuple, dict] = {}

    def record(message, category, filename, lineno, file=None, line=None):
        where, own = _where(filename, lineno)
        text = str(message).strip().splitlines()[0] if str(message).strip() else ""
        seen = found.setdefault(
            (category.__name__, text, where),
            {"category": category.__name__, "message": text, "where": where, "own": own, "count": 0},
        )
        seen["count"] += 1

    out: list[dict] = []
    with warnings.catch_warnings():  # the filters stay the user's (-W, PYTHONWARNINGS): what would be printed
        warnings.showwarning = record
        try:
            yield out
        finally:
            out.extend(found.values())


def _cost(dtypes: Sequence[str]) -> int:
    """A check's rough cost in float32 checks: a complex dtype samples and tests two parts."""
    return sum(2 if str(d).startswith("complex") else 1 for d in dtypes)


def available_cpus() -> list[int]:
    """The CPUs this process may run on."""
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def default_jobs() -> int:
    return len(available_cpus())


def run_on(cpus) -> None:
    """Keep this process on ``cpus`` (where the OS allows it). Call it before JAX starts: XLA sizes
    its thread pools from the CPUs a process may use."""
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)


def cpu_shares(jobs: int, cpus: Sequence[int]) -> list[set[int]]:
    """``jobs`` CPU sets for ``jobs`` workers: disjoint shares of ``cpus`` (round robin), or one CPU
    each, shared in turn, when there are more workers than CPUs."""
    if jobs >= len(cpus):
        return [{cpus[i % len(cpus)]} for i in range(jobs)]
    return [set(cpus[i::jobs]) for i in range(jobs)]


def check_entries(
    frameworks,
    indices_and_dtypes: Sequence[tuple[int, Sequence[str]]],
    *,
    x64: bool,
    profile,
    seed: int,
    jobs: int,
    on_result: Callable[[int, Triage, dict, list[dict]], None],
    plots: bool = False,
    on_running: Callable[[list[int]], None] | None = None,
) -> None:
    """Check ``catalog(frameworks)[i]`` in ``dtypes`` for each ``(i, dtypes)`` on ``jobs`` processes
    (in this process when ``jobs == 1``), calling ``on_result(i, triage, svgs, warned)`` as each one
    finishes; ``svgs`` are its HTML report plots when ``plots`` (see ``_check``), else empty;
    ``warned`` the warnings its check raised (``warnings_of``). ``on_running(indices)`` is told
    which entries are being checked whenever that changes (on processes: the oldest ``jobs`` not
    finished, in the order the pool hands them out)."""
    running = on_running or (lambda indices: None)
    if jobs <= 1:
        _start(frameworks, x64)
        for index, dtypes in indices_and_dtypes:
            running([index])
            on_result(*_check(index, profile, seed, dtypes, plots))
        return
    context = multiprocessing.get_context("spawn")  # a forked JAX runtime is not safe
    shares = context.Queue()
    for cpus in cpu_shares(jobs, available_cpus()):
        shares.put(cpus)
    with concurrent.futures.ProcessPoolExecutor(
        jobs, mp_context=context, initializer=_start, initargs=(frameworks, x64, shares)
    ) as pool:
        # the costliest first, so that no process is left alone with a long entry at the end
        ordered = sorted(indices_and_dtypes, key=lambda item: -_cost(item[1]))
        futures = {pool.submit(_check, index, profile, seed, dtypes, plots): index for index, dtypes in ordered}
        pending = list(futures.values())
        running(pending[:jobs])
        for future in concurrent.futures.as_completed(futures):
            pending.remove(futures[future])
            running(pending[:jobs])
            on_result(*future.result())


def same_function(a, b) -> bool:
    """``a`` and ``b`` compute the same outputs: the same object, or closures of the same code over
    equal captured values (``flax.linen.initializers.he_normal()`` and ``jax.nn.initializers.he_normal()``
    are two such closures: Flax re-exports JAX's builder)."""
    if a is b:
        return True
    code = getattr(a, "__code__", None)
    if (
        code is None
        or code is not getattr(b, "__code__", None)
        or getattr(a, "__defaults__", None) != getattr(b, "__defaults__", None)
    ):
        return False
    cells_a, cells_b = a.__closure__ or (), b.__closure__ or ()
    if len(cells_a) != len(cells_b):
        return False
    for x, y in zip((c.cell_contents for c in cells_a), (c.cell_contents for c in cells_b)):
        if callable(x) and callable(y):
            if not same_function(x, y):
                return False
            continue
        try:
            if type(x) is not type(y) or not (x is y or bool(x == y)):
                return False
        except Exception:  # noqa: BLE001 - e.g. arrays: not provably equal
            return False
    return True


def duplicates(chosen: Sequence[tuple[int, CatalogEntry, Sequence[str]]]) -> dict[int, int]:
    """{i: j} for the chosen entries i whose verdicts are an earlier entry j's: the same function
    (``same_function``), law, known defects and dtypes. Keys and shapes derive from the seed, the
    law and the case, not from the initializer, so i's check would draw exactly j's samples and
    reach j's verdicts. j is always an entry that is itself checked."""
    originals: list[tuple[int, CatalogEntry, list]] = []
    found = {}
    for i, entry, dtypes in chosen:
        dtypes = list(dtypes)
        for j, other, other_dtypes in originals:
            if (
                other_dtypes == dtypes
                and other.law == entry.law
                and other.defects == entry.defects
                and same_function(other.init, entry.init)
            ):
                found[i] = j
                break
        else:
            originals.append((i, entry, dtypes))
    return found


def renamed(result, entry_id: str):
    """A catalog result (triage) with its report under another entry's id."""
    return dataclasses.replace(result, report=dataclasses.replace(result.report, initializer=entry_id))
