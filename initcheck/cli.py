"""The ``initcheck`` command line."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import os
import pathlib
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
from typing import TYPE_CHECKING

import initcheck
from initcheck import _cli_parser, _xla
from initcheck import _frameworks as frameworks
from initcheck import _profiles as profiles
from initcheck._version import __version__

if TYPE_CHECKING:  # imported by _import_handlers once the arguments are parsed: --help imports no JAX
    import jax

    from initcheck import _defects, _output, _runner, adapters, law_syntax, lock
    from initcheck import _document as document
    from initcheck import _sampler as sampler
    from initcheck._catalog import CatalogEntry, catalog
    from initcheck._targets import declared, names, read_table

__all__ = ["main"]


def _import_handlers() -> None:
    """Import what the handlers use (JAX among them), as module globals: called once the arguments
    are parsed, so that ``initcheck --help`` and a refused argument import none of it."""
    global jax, _defects, _output, _runner, adapters, law_syntax, lock, document, sampler
    global CatalogEntry, catalog, declared, names, read_table
    import jax

    from initcheck import _defects, _output, _runner, adapters, law_syntax, lock
    from initcheck import _document as document
    from initcheck import _sampler as sampler
    from initcheck._catalog import CatalogEntry, catalog
    from initcheck._targets import declared, names, read_table


def _entries(args) -> list[tuple[int, CatalogEntry]]:
    """(index in catalog(args.frameworks), entry) of the chosen entries."""

    if args.x64:
        jax.config.update("jax_enable_x64", True)
    return [
        (i, e)
        for i, e in enumerate(catalog(args.frameworks))
        if not getattr(args, "entries", None) or any(f in e.id for f in args.entries)
    ]


def _report(args) -> int:
    chosen = [(i, e, [d for d in e.dtypes if not args.dtypes or d in args.dtypes]) for i, e in _entries(args)]
    chosen = [(i, e, dtypes) for i, e, dtypes in chosen if dtypes]
    if not chosen:
        options = []
        if args.entries:
            options.append(f"--entries {' '.join(args.entries)}")
        if args.dtypes:
            options.append(f"--dtypes {','.join(args.dtypes)}")
        given = " ".join(options)
        print(
            f"initcheck report: {given} matches no catalog entry; see `initcheck list` for the ids and dtypes",
            file=sys.stderr,
        )
        return 2
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    copies = _runner.duplicates(chosen)  # entry -> the entry whose verdicts it shares
    jobs = max(1, min(args.jobs or _runner.default_jobs(), len(chosen) - len(copies)))
    print(
        f"initcheck {__version__}: {len(chosen)} catalog entries, profile={args.profile}, seed={args.seed}, "
        f"device={sampler.device_description()}, {jobs} process{'es' if jobs > 1 else ''}, "
        f"eager calls in {_eager_calls(args.profile)}, compile cache {_cache_description(args)}",
        flush=True,
    )
    entries = {i: e for i, e, _ in chosen}
    done: dict = {}
    started = time.perf_counter()
    if copies:
        print(
            f"{len(copies)} entries are the same function as another entry (same code and arguments) and "
            "share its verdicts",
            flush=True,
        )
    progress = _Progress(len(chosen))

    def show(index, result, note=""):
        done[index] = result
        entry = entries[index]
        dtypes = sorted({v.case.dtype for v in result.report.verdicts}, key=entry.dtypes.index)
        progress.finished(_word(result), f"{entry.id} [{','.join(dtypes)}] ({note or f'{result.report.seconds:.1f}s'})")

    drawn: dict[str, str] = {}  # the report's plots, drawn by the workers as they go
    warned: dict[tuple, dict] = {}  # the warnings the checks raised, counted (``_runner.warnings_of``)

    def on_result(index, result, svgs, warnings=()):
        drawn.update(svgs)
        for w in warnings:
            seen = warned.setdefault((w["category"], w["message"], w["where"]), {**w, "count": 0, "targets": []})
            seen["count"] += w["count"]
            seen["targets"].append(entries[index].id)
        show(index, result)
        for copy, original in copies.items():
            if original == index:
                show(
                    copy,
                    _runner.renamed(result, entries[copy].id),
                    f"the same function as {entries[index].id}: its verdicts",
                )

    with progress:
        _runner.check_entries(
            args.frameworks,
            [(i, dtypes) for i, _, dtypes in chosen if i not in copies],
            x64=args.x64,
            profile=args.profile,
            seed=args.seed,
            jobs=jobs,
            on_result=on_result,
            plots=True,
            on_running=lambda indices: progress.running([entries[i].id for i in indices]),
        )
    results = [(entries[i], done[i]) for i, _, _ in chosen]

    seconds = time.perf_counter() - started
    shared = {entries[i].id: entries[j].id for i, j in copies.items()}
    report_document = document.build(
        "initcheck report",
        [document.catalog_target(e, r, verdicts_of=shared.get(e.id)) for e, r in results],
        profile=args.profile,
        seed=args.seed,
        seconds=seconds,
        eager_calls=_eager_calls(args.profile),
    )
    report_document["warnings"] = sorted(warned.values(), key=lambda w: (not w["own"], -w["count"]))
    json_path, html_path = _output.write(
        report_document, json_path=out / "conformance.json", html_path=out / "conformance.html", jobs=jobs, drawn=drawn
    )
    unexpected = [(e, r) for e, r in results if _unexpected(r)]
    for _, result in unexpected:
        if result.unexpected:
            print("\n" + result.report.failure_text())
    print()
    for entry, result in results:
        for defect in result.unobserved:
            status = (
                "NOT SEEN although expected (initcheck regression?)"
                if defect.expected_now
                else f"not seen with {defect.package} {defect.installed} (newer than {defect.last_seen}): fixed? "
                "update initcheck/_defects.py"
            )
            print(f"known defect {defect.name} on {entry.id}: {status}")
    _summary(results)
    print(_warnings_line(report_document["warnings"], json_path))
    print(
        f"{len(results)} entr{'ies' if len(results) != 1 else 'y'} in {seconds:.0f}s; false-alarm bound {report_document['false_alarm_bound']:.2g}; "
        f"wrote {html_path} and {json_path}"
    )
    print(_closing_line(results))
    return 1 if unexpected else 0


class _Progress:
    """The run's progress on the console. On a terminal: one line redrawn in place (done/total,
    elapsed time, the entries being checked), with a line of its own for each unexpected failure.
    Elsewhere (CI logs): a plain line at each tenth of the run, and for each unexpected failure."""

    def __init__(self, total: int, stream=None) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.total, self.done, self.tenths = total, 0, 0
        self.counts = {"PASS": 0, "KNOWN": 0, "FAIL": 0}
        self.checking: list[str] = []
        self.started = time.perf_counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.ticker = threading.Thread(target=self._tick, daemon=True)

    def __enter__(self) -> _Progress:
        if self.tty:
            self.ticker.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.tty:
            self.ticker.join()
            with self.lock:
                self.stream.write(f"\r\x1b[K[{self.done}/{self.total}] checked in {self.elapsed()}: {self.tally()}\n")
                self.stream.flush()

    def _tick(self) -> None:
        while not self.stop.wait(1.0):
            with self.lock:
                self._draw()

    def elapsed(self) -> str:
        minutes, seconds = divmod(int(time.perf_counter() - self.started), 60)
        return f"{minutes}:{seconds:02d}"

    def tally(self) -> str:
        return (
            f"{self.counts['PASS']} pass, {self.counts['KNOWN']} known defects only, {self.counts['FAIL']} unexpected"
        )

    def running(self, ids: list[str]) -> None:
        with self.lock:
            self.checking = ids
            if self.tty:
                self._draw()

    def finished(self, word: str, text: str) -> None:
        """One entry done: ``word`` (PASS, KNOWN, FAIL) and ``text`` (its id, dtypes and time)."""
        with self.lock:
            self.done += 1
            self.counts[word] += 1
            width = len(str(self.total))
            line = f"[{self.done:{width}d}/{self.total}] {word} {text}"
            if self.tty:
                if word == "FAIL":
                    self.stream.write(f"\r\x1b[K{line}\n")
                self._draw()
                return
            tenths = self.done * 10 // self.total
            if word == "FAIL" or tenths > self.tenths:
                self.stream.write(f"{line}; {self.done * 100 // self.total}% in {self.elapsed()}: {self.tally()}\n")
                self.stream.flush()
            self.tenths = tenths

    def _draw(self) -> None:
        """The progress line, redrawn in place (terminals only)."""
        width = shutil.get_terminal_size((100, 20)).columns
        filled = self.done * 20 // max(1, self.total)
        counts = f"{self.counts['PASS']} pass {self.counts['KNOWN']} known {self.counts['FAIL']} unexpected"
        line = f"[{self.done}/{self.total}] {'#' * filled}{'.' * (20 - filled)} {self.elapsed()} {counts}"
        if self.checking and self.done < self.total:
            more = f" (+{len(self.checking) - 1})" if len(self.checking) > 1 else ""
            line += f" | checking {self.checking[0]}{more}"
        self.stream.write("\r\x1b[K" + line[: width - 1])
        self.stream.flush()


def _unexpected(result) -> bool:
    """Failures no known defect explains, or a defect that should show and did not."""
    return bool(result.unexpected) or any(d.expected_now for d in result.unobserved)


def _word(result) -> str:
    if result.report.passed:
        return "PASS"
    return "FAIL" if _unexpected(result) else "KNOWN"


def _summary(results) -> None:
    """The run by framework (entries, pass, known defects only, unexpected), then each known defect
    the run showed: its name, what it is in a few words, the dtypes it hit and on how many entries."""
    frameworks_seen = list(dict.fromkeys(e.framework for e, _ in results))
    head = f"{'framework':<12}{'entries':>8}{'pass':>7}{'known defects only':>20}{'unexpected':>12}"
    print(head)
    for name in [*frameworks_seen, "all"]:
        group = [r for e, r in results if name in ("all", e.framework)]
        words = [_word(r) for r in group]
        print(f"{name:<12}{len(group):>8}{words.count('PASS'):>7}{words.count('KNOWN'):>20}{words.count('FAIL'):>12}")
    defects = _defects_seen(results)
    if defects:
        print("\nknown framework defects (still failures: documented, with a reference, in the report)")
    for name, (defect, dtypes, by_framework) in defects.items():
        hits = sum(by_framework.values())
        where = ", ".join(f"{f} {n}" for f, n in by_framework.items())
        print(f"  {name} ({defect.package} <= {defect.last_seen}): {_few_words(defect)}")
        print(f"      in {'/'.join(dtypes)} on {hits} entr{'ies' if hits != 1 else 'y'} ({where})")


def _defects_seen(results) -> dict:
    """``{name: (defect, dtypes it failed in, {framework: entries})}`` of the known defects the run showed."""
    seen: dict = {}
    for entry, result in results:
        for defect in result.observed:
            _, dtypes, frameworks_hit = seen.setdefault(defect.name, (defect, set(), {}))
            dtypes.update(v.case.dtype for v in result.report.verdicts if v.known_defect == defect.name)
            frameworks_hit[entry.framework] = frameworks_hit.get(entry.framework, 0) + 1
    order = {d: i for i, d in enumerate(_DTYPE_ORDER)}
    return {
        name: (defect, sorted(dtypes, key=lambda d: order.get(d, len(order))), frameworks_hit)
        for name, (defect, dtypes, frameworks_hit) in sorted(seen.items(), key=lambda kv: -sum(kv[1][2].values()))
    }


_DTYPE_ORDER = ("float32", "bfloat16", "float16", "float64", "complex64", "complex128")
_LOW_PRECISION = {"bfloat16", "float16"}


def _few_words(defect) -> str:
    """What a known defect is, in a few words: its kind and the first clause of its summary."""
    plain = re.sub(r" \([^()]*\)", "", defect.summary)  # the asides in parentheses go
    clause = re.split(r": |; ", plain, maxsplit=1)[0]
    if len(clause) > 140:
        clause = clause[:140].rsplit(" ", 1)[0] + " ..."
    return f"{defect.group}: {clause}"


def _warnings_line(warned: list[dict], json_path) -> str:
    """One line on the warnings the checks raised (counted, not printed), and a line for each of
    initcheck's own (a bug of initcheck)."""
    if not warned:
        return "no warnings during the checks"
    own = [w for w in warned if w["own"]]
    third = [w for w in warned if not w["own"]]
    lines = []
    if third:
        count = sum(w["count"] for w in third)
        kinds = ", ".join(sorted({w["category"] for w in third}))
        sources = ", ".join(sorted({w["where"].split("/", 1)[0] for w in third}))
        lines.append(
            f"{count} third-party warning{'s' * (count != 1)} during the checks ({len(third)} distinct: {kinds}, "
            f'from {sources}), not printed: see "warnings" in {json_path}'
        )
    for w in own:
        lines.append(
            f"initcheck's own {w['category']} at {w['where']} ({w['count']}x, on {', '.join(w['targets'][:3])}): "
            f"{w['message']} (a bug of initcheck: please report it)"
        )
    return "\n".join(lines)


def _closing_line(results) -> str:
    """What matters, in one line: the unexpected failures, or that every failure is a known
    defect and in which dtypes."""
    unexpected = [(e, r) for e, r in results if _unexpected(r)]
    if unexpected:
        named = "; ".join(
            f"{e.id} ({', '.join(sorted({f'{v.property} in {v.case.dtype}' for v in r.unexpected})) or 'an expected known defect not seen'})"
            for e, r in unexpected
        )
        return f"{len(unexpected)} unexpected failure{'s' * (len(unexpected) != 1)}: {named}"
    known = [r for _, r in results if _word(r) == "KNOWN"]
    if not known:
        return f"0 unexpected failures: {f'all {len(results)} entries pass' if len(results) > 1 else '1 entry passes'}"
    hit: dict[str, tuple[set, set]] = {}  # dtype -> (entries, defects) its known-defect failures are on
    for entry, result in results:
        for v in result.report.verdicts:
            if v.known_defect:
                entries_hit, defects_hit = hit.setdefault(v.case.dtype, (set(), set()))
                entries_hit.add(entry.id)
                defects_hit.add(v.known_defect)
    groups: dict[frozenset, list[str]] = {}  # dtypes failing on the very same entries are said together
    for dtype in sorted(hit, key=lambda d: _DTYPE_ORDER.index(d) if d in _DTYPE_ORDER else len(_DTYPE_ORDER)):
        groups.setdefault(frozenset(hit[dtype][0]), []).append(dtype)
    if set(hit) <= _LOW_PRECISION:
        where = f"in {'/'.join(d for d in _DTYPE_ORDER if d in hit)} only"
    else:
        parts = []
        for ids, dtypes in sorted(groups.items(), key=lambda kv: -len(kv[0])):
            names = sorted(hit[dtypes[0]][1])
            which = f": {', '.join(names)}" if len(ids) <= 3 else ""
            parts.append(f"{'/'.join(dtypes)} ({len(ids)} entr{'ies' if len(ids) != 1 else 'y'}{which})")
        where = "in " + (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0])
    return (
        f"0 unexpected failures: every failure is a documented framework defect, {where}; "
        f"{len(results) - len(known)} of {len(results)} entries pass in every dtype"
    )


def _list(args) -> int:
    entries = [e for _, e in _entries(args)]
    for framework in dict.fromkeys(e.framework for e in entries):
        group = [e for e in entries if e.framework == framework]
        print(f"{framework} ({len(group)} entries)")
        for e in group:
            same = f"  [same object as {e.same_as}]" if e.same_as else ""
            print(f"  {e.id}  ->  {e.law!r}{same}")
            print(f"      dtypes: {', '.join(e.dtypes)}" + (f"; {e.notes}" if e.notes else ""))
            for defect in e.defects:
                print(
                    f"      known defect {defect.name} ({defect.package} <= {defect.last_seen}) on "
                    f"{'/'.join(defect.properties)} in {'/'.join(d for d in defect.dtypes if d in e.dtypes) or 'no checked dtype'}"
                )
    print(f"{len(entries)} entries")
    return 0


def _load_target(spec: str):
    """``MODULE:ATTR`` (ATTR dotted, or called with literal arguments: ``MODULE:builder(2.0, "fan_in")``)."""

    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name or not attr:
        raise ValueError(
            f"target={spec!r} must be MODULE:ATTR, e.g. jax.nn.initializers:he_normal() or mypkg.inits:my_init"
        )
    call = law_syntax.literal_call(attr, "target")
    name = attr if call is None else call[0]
    obj = law_syntax.resolve(f"{module_name}:{name}", "target")
    if call is not None:
        try:
            obj = obj(*call[1], **call[2])
        except Exception as exc:  # noqa: BLE001 - the user's builder; say what it raised
            raise ValueError(f"target={spec!r}: calling {name} raised {type(exc).__name__}: {exc}") from None
    return obj


def _import_text(spec: str, name: str) -> str:
    """Python that binds `name` to what `_load_target(spec)` returns, with public names only: the
    import of MODULE's attribute and the builder's call with its literal arguments (snippets)."""
    module_name, _, attr = spec.partition(":")
    call = law_syntax.literal_call(attr, "target")
    dotted = attr if call is None else call[0]
    value = dotted
    if call is not None:
        value += f"({', '.join([*map(repr, call[1]), *(f'{k}={v!r}' for k, v in call[2].items())])})"
    return f"from {module_name} import {dotted.split('.')[0]}\n{name} = {value}"


def _catalog_id(target: str) -> CatalogEntry:
    """The catalog entry whose id (as ``initcheck list`` prints it) is ``target``."""
    entries = catalog()
    found = next((e for e in entries if e.id == target), None)
    if found is None:
        close = difflib.get_close_matches(target, [e.id for e in entries], n=3)
        raise ValueError(
            f"target={target!r} is neither MODULE:ATTR (e.g. mypkg.inits:my_init) nor a catalog id"
            + (f"; did you mean {' or '.join(close)}?" if close else "")
            + " (initcheck list prints the ids)"
        )
    return found


def _catalog_match(init) -> CatalogEntry | None:
    """The first catalog entry whose initializer is ``init``'s function with its arguments."""
    return next((e for e in catalog() if _runner.same_function(init, e.init)), None)


def _check_target(args) -> tuple:
    """(init, law, origin, entry) of ``initcheck check``: the target loaded, its law (``--expect``,
    its ``@initcheck.expects`` mark, else the catalog entry it is), the Python that defines both
    for the snippets, and that catalog entry (None for another initializer)."""
    expect = None if args.expect is None else law_syntax.parse_law(args.expect, "--expect")
    parsed = f"import initcheck.law_syntax\nlaw = initcheck.law_syntax.parse_law({args.expect!r})"
    entry: CatalogEntry | None
    if ":" not in args.target:
        entry = _catalog_id(args.target)
        origin = f"entry = next(e for e in initcheck.catalog() if e.id == {entry.id!r})\ninit = entry.init"
        if expect is None:
            return entry.init, entry.law, f"{origin}\nlaw = entry.law", entry
        return entry.init, expect, f"{origin}\n{parsed}", entry
    init = _load_target(args.target)
    entry = None
    if expect is not None:
        law, law_text = expect, parsed
    elif getattr(init, "__initcheck_law__", None) is not None:
        law, law_text = init.__initcheck_law__, "law = init.__initcheck_law__"
    elif (entry := _catalog_match(init)) is not None:
        law, law_text = entry.law, f"law = next(e for e in initcheck.catalog() if e.id == {entry.id!r}).law"
        print(f"initcheck check: {args.target} is the catalog entry {entry.id}: its catalog law {law!r}", flush=True)
    else:
        raise ValueError(
            f"{args.target} declares no law (@initcheck.expects) and is no catalog entry's function with these "
            f'arguments; give one with --expect, e.g. --expect "normal(std=0.01)"'
        )
    origin = f"{_import_text(args.target, 'init')}\n{law_text}"
    if args.haiku:
        origin += "\nimport initcheck.adapters\ninit = initcheck.adapters.from_haiku(init)"
    return init, law, origin, entry


def _check(args) -> int:
    try:
        init, law, origin, entry = _check_target(args)
        if args.haiku:
            init = adapters.from_haiku(init)
        report = initcheck.check(
            init,
            law,
            shapes=args.shapes if args.shapes is not None or entry is None else entry.shapes,
            dtypes=args.dtypes,
            properties=args.properties,
            seed=args.seed,
            profile=_profile(args),
            origin=origin,
        )
    except (ValueError, TypeError) as exc:
        print(f"initcheck check: {exc}", file=sys.stderr)
        return 2
    if entry is not None and law is entry.law:  # the catalog's law: its known defects are marked
        report = _defects.triage(report, entry.defects).report
        if ":" not in args.target:
            report.initializer = entry.id
    print(report)
    _write_report(args, "initcheck check", "initializer", report)
    return 1 if report.unexplained else 0


def _profile(args) -> profiles.Profile:
    """``--profile`` with ``--time-limit`` as its limit per call, when given."""
    chosen = profiles.get(args.profile)
    return chosen if args.time_limit is None else dataclasses.replace(chosen, time_limit_s=args.time_limit)


def _write_report(args, command: str, kind: str, report, **extra) -> None:
    """``--json``/``--html``: the one target's report, as ``initcheck report`` writes the catalog's."""
    if not (args.json or args.html):
        return
    row = document.target(
        args.target,
        kind,
        verdicts=[v.to_dict() for v in report.verdicts],
        law=report.law,
        seconds=report.seconds,
        **extra,
    )
    built = document.build(command, [row], profile=args.profile, seed=args.seed, seconds=report.seconds)
    for path in _output.write(built, json_path=args.json, html_path=args.html):
        print(f"wrote {path}")


def _audit(args) -> int:
    def progress(line: str) -> None:
        print(f"initcheck audit: {line}", file=sys.stderr, flush=True)

    try:
        factory = _load_target(args.target)
        if not callable(factory):
            raise TypeError(
                f"{args.target} is not callable; give a function returning (model, *inputs) or "
                "initcheck.Model(model, args=..., kwargs=..., rng=..., expect=...)"
            )
        progress(f"building the model with {args.target}()")
        try:
            made = factory()
        except Exception as exc:  # noqa: BLE001 - the user's factory: its traceback, then status 2
            traceback.print_exc(file=sys.stderr)
            print(
                f"initcheck audit: {args.target}() raised {type(exc).__name__}: {exc} (its traceback is above); "
                "fix the factory, which must return (model, *inputs) or initcheck.Model(...)",
                file=sys.stderr,
            )
            return 2
        target = initcheck.Model.of(made, rng=args.seed)  # as pytest --initcheck does
        report = initcheck.audit(
            target,
            properties=args.properties,
            profile=args.profile,
            seed=args.seed,
            origin=f"{_import_text(args.target, 'factory')}\ntarget = initcheck.Model.of(factory(), rng={args.seed})",
            progress=progress,
            memory=args.memory,
        )
    except (ValueError, TypeError) as exc:
        print(f"initcheck audit: {exc}", file=sys.stderr)
        return 2
    print(report)
    signal = {"signal": report.signal.as_dict()} if report.signal is not None else {}
    _write_report(args, "initcheck audit", "model", report, coverage=report.coverage.to_dict(), **signal)
    if report.unexplained:
        return 1
    return 1 if args.strict and report.result == "partial" else 0


def _lock_table(config: pathlib.Path) -> dict:
    """``[tool.initcheck]`` of ``config`` (empty when the file is missing), checked for ``lock``'s keys."""
    try:
        table = read_table(config)
    except ValueError as exc:
        raise ValueError(f"--config {exc}") from None
    for key in ("modules", "models", "frameworks"):
        names(table.get(key, []), f"[tool.initcheck] {key}", source=f" in {config}")
    return table


def _lock(args) -> int:
    """``initcheck lock``: every target of ``[tool.initcheck]`` against the lock file."""
    config = pathlib.Path(args.config)
    try:
        table = _lock_table(config)
        path = pathlib.Path(args.lock or config.parent / table.get("lock", lock.DEFAULT_PATH))
        before = lock.Lock.read(path)
    except (ValueError, lock.LockError) as exc:
        print(f"initcheck lock: {exc}", file=sys.stderr)
        return 2
    sys.path.insert(0, str(config.parent.resolve()))  # the project's packages import as under pytest
    seed = args.seed if args.seed is not None else table.get("seed", 0)
    chosen = args.frameworks if args.frameworks is not None else frameworks.parse(table.get("frameworks", []))
    try:
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed={seed!r} must be a non-negative int (--seed or [tool.initcheck] seed)")
        targets = declared(table.get("modules", []), table.get("models", []), chosen)
    except ValueError as exc:
        print(f"initcheck lock: {exc}", file=sys.stderr)
        return 2
    if not targets:
        print(
            f"initcheck lock: {config} declares nothing to lock; add modules, models or frameworks to its "
            "[tool.initcheck] table (or give --frameworks jax)",
            file=sys.stderr,
        )
        return 2
    backend = lock.backend()
    print(f"initcheck {__version__}: {len(targets)} targets against {path} ({backend}, seed {seed})", flush=True)
    hint = "rewrite the lock with initcheck lock --update (or pytest --initcheck --initcheck-lock-update)"
    outcomes, errors, rows = [], [], []
    for i, target in enumerate(targets, 1):
        started = time.perf_counter()
        try:
            derive = lock.target_digests(target.kind, target.load(), seed=seed)
            outcome = lock.check_target(
                target.name, target.kind, derive, before, backend, update=args.update, update_hint=hint, seed=seed
            )
        except Exception as exc:  # noqa: BLE001 - one broken target is one error, the rest still run
            errors.append(target.name)
            print(f"[{i}/{len(targets)}] ERROR {target.name}: {type(exc).__name__}: {exc}", flush=True)
            rows.append(document.target(target.name, target.kind, error=f"{type(exc).__name__}: {exc}"))
            continue
        outcomes.append(outcome)
        seconds = time.perf_counter() - started
        lines = outcome.lines()
        print(f"[{i}/{len(targets)}] {outcome.status.upper()} {target.name} ({seconds:.1f}s): {lines[0]}", flush=True)
        for line in lines[1:]:
            print(f"    {line.strip()}")
        rows.append(document.target(target.name, target.kind, verdicts=[outcome.verdict().to_dict()], seconds=seconds))
    declared_names = [t.name for t in targets if t.kind != "broken"]
    after = lock.merged(
        before, backend, outcomes, environment=lock.environment(seed), update=args.update, declared=declared_names
    )
    written = after.write()
    section = lock.section(before, backend, outcomes, update=args.update, written=written, declared=declared_names)
    counts = ", ".join(f"{n} {status}" for status, n in section["counts"].items() if n)
    print(f"\n{counts}{f', {len(errors)} errors' if errors else ''}; {'wrote' if written else 'unchanged:'} {path}")
    for name in section["removed"]:
        print(f"{name} is in the lock but no longer declared" + ("; dropped" if args.update else "; --update drops it"))
    if args.json or args.html:
        built = document.build("initcheck lock", rows, profile="ci", seed=seed, seconds=0.0, lock=section)
        for written_path in _output.write(built, json_path=args.json, html_path=args.html):
            print(f"wrote {written_path}")
    failed = [o for o in outcomes if o.status in (lock.CHANGED, lock.UNREPRODUCIBLE)]
    return 1 if failed or errors else 0


def _eager_calls(profile: str) -> str:
    """In which dtypes a catalog run calls each initializer eagerly (``contract``, ``determinism``)."""
    if profiles.get(profile).full_grid:
        return "every dtype"
    return "one dtype per entry, rotating over its dtypes (the jitted path in every case)"


def _cache_description(args) -> str:
    """Where compiled code is kept: this machine's cache folder, the run's own folder, or JAX's variable."""
    if getattr(args, "run_only_cache", None):
        return f"{args.run_only_cache} (this run only)"
    if getattr(args, "machine_cache", None):
        return f"{args.machine_cache} (this machine's, kept between runs)"
    return os.environ.get("JAX_COMPILATION_CACHE_DIR") or "none"


def _unwritable_path(args) -> str | None:
    """The first path option of ``args`` that cannot be written, named with its path and why
    (checked before any work: a check must not run for nothing)."""

    for option, attribute, problem_of in (
        ("--out", "out", document.folder_problem),
        ("--compile-cache", "compile_cache", document.folder_problem),
        ("--json", "json", document.file_problem),
        ("--html", "html", document.file_problem),
    ):
        path = getattr(args, attribute, None)
        problem = path and problem_of(path)
        if problem:
            return f"{option} {path}: {problem}"
    return None


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; its exit status (2 on bad arguments)."""
    args = _parser().parse_args(argv)
    if args.command in ("check", "report", "audit") and not args.xla_optimize:  # the commands that compile
        _xla.prefer_fast_compiles()  # (a lock records the values of the user's settings)
    _import_handlers()
    refusal = _unwritable_path(args)
    if refusal:
        print(f"initcheck {args.command}: {refusal}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        folder = _cache_folder(args, stack)
        if folder:
            stack.enter_context(_xla.compile_cache(folder))
        try:
            return args.handler(args)
        except frameworks.FrameworkUnavailable as exc:
            print(f"initcheck {args.command}: {exc}", file=sys.stderr)
            return 2


def _parser() -> argparse.ArgumentParser:
    """The command line: one parser per subcommand, each with its handler."""
    parser, commands = _cli_parser.root_parser()
    _cli_parser.report_parser(commands).set_defaults(handler=_report)
    _cli_parser.check_parser(commands).set_defaults(handler=_check)
    _cli_parser.audit_parser(commands).set_defaults(handler=_audit)
    _cli_parser.list_parser(commands).set_defaults(handler=_list)
    _cli_parser.lock_parser(commands).set_defaults(handler=_lock)
    return parser


def _cache_folder(args, stack: contextlib.ExitStack) -> str | None:
    """Where this run keeps compiled code: JAX's variable when the user set it; else this
    machine's folder of the compile cache (``--compile-cache`` or the default root), pruned; with
    ``--no-compile-cache``, a temporary folder of this run for ``report`` (its processes share their
    compiles: about 10% of the run) and none for the others."""
    if args.command not in ("check", "report", "audit") or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    if args.no_compile_cache:
        if args.command != "report":
            return None
        args.run_only_cache = stack.enter_context(tempfile.TemporaryDirectory(prefix="initcheck-xla-"))
        return args.run_only_cache
    args.machine_cache = str(_xla.ready_machine_folder(args.compile_cache))
    return args.machine_cache


def run() -> None:
    """The ``initcheck`` command: ``main``'s exit status. A call abandoned after its time limit
    still runs on a thread; the interpreter's shutdown would crash inside it (signal 11), so the
    process then ends at once, its output flushed."""
    code = main()
    if sampler.abandoned_calls():
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
