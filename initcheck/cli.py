"""The ``initcheck`` command line."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import pathlib
import sys
import tempfile
import time
import traceback

import jax

import initcheck
from initcheck import _cli_parser, _output, _runner, _xla, adapters, law_syntax, lock
from initcheck import _document as document
from initcheck import _frameworks as frameworks
from initcheck import _profiles as profiles
from initcheck import _sampler as sampler
from initcheck._catalog import CatalogEntry, catalog
from initcheck._record import factory_origin
from initcheck._targets import declared, names, read_table
from initcheck._version import __version__

__all__ = ["main"]


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

    def show(index, result, note=""):
        done[index] = result
        entry = entries[index]
        print(
            f"[{len(done):{len(str(len(chosen)))}d}/{len(chosen)}] {_word(result)} {entry.id} "
            f"[{','.join(sorted({v.case.dtype for v in result.report.verdicts}, key=entry.dtypes.index))}] "
            f"({note or f'{result.report.seconds:.1f}s'})",
            flush=True,
        )

    drawn: dict[str, str] = {}  # the report's plots, drawn by the workers as they go

    def on_result(index, result, svgs):
        drawn.update(svgs)
        show(index, result)
        for copy, original in copies.items():
            if original == index:
                show(
                    copy,
                    _runner.renamed(result, entries[copy].id),
                    f"the same function as {entries[index].id}: its verdicts",
                )

    if copies:
        print(
            f"{len(copies)} entries are the same function as another entry (same code and arguments) and "
            "share its verdicts",
            flush=True,
        )
    _runner.check_entries(
        args.frameworks,
        [(i, dtypes) for i, _, dtypes in chosen if i not in copies],
        x64=args.x64,
        profile=args.profile,
        seed=args.seed,
        jobs=jobs,
        on_result=on_result,
        plots=True,
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
    json_path, html_path = _output.write(
        report_document, json_path=out / "conformance.json", html_path=out / "conformance.html", jobs=jobs, drawn=drawn
    )
    _summary(results)
    unexpected = [(e, r) for e, r in results if _unexpected(r)]
    print(
        f"\n{sum(1 for _, r in results if r.report.passed)} passed, "
        f"{sum(1 for _, r in results if not r.report.passed and not _unexpected(r))} failed with known defects only, "
        f"{len(unexpected)} failed unexpectedly, in {seconds:.0f}s; "
        f"false-alarm bound {report_document['false_alarm_bound']:.2g}; wrote {html_path} and {json_path}"
    )
    for entry, result in results:
        for defect in result.unobserved:
            status = (
                "NOT SEEN although expected (initcheck regression?)"
                if defect.expected_now
                else f"not seen with {defect.package} {defect.installed} (newer than {defect.last_seen}): fixed? "
                "update initcheck/_defects.py"
            )
            print(f"known defect {defect.name} on {entry.id}: {status}")
    for _, result in unexpected:
        if result.unexpected:
            print("\n" + result.report.failure_text())
    return 1 if unexpected else 0


def _unexpected(result) -> bool:
    """Failures no known defect explains, or a defect that should show and did not."""
    return bool(result.unexpected) or any(d.expected_now for d in result.unobserved)


def _word(result) -> str:
    if result.report.passed:
        return "PASS"
    return "FAIL" if _unexpected(result) else "KNOWN"


def _summary(results) -> None:
    width = max(len(e.id) for e, _ in results)
    print(f"\n{'entry'.ljust(width)}  verdicts  failed  known  result")
    for entry, result in results:
        report = result.report
        known = sum(1 for v in report.verdicts if v.known_defect)
        print(
            f"{entry.id.ljust(width)}  {len(report.verdicts):8d}  {len(report.failures):6d}  {known:5d}  {_word(result)}"
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


def _check(args) -> int:
    try:
        init = _load_target(args.target)
        if args.expect is not None:
            law = law_syntax.parse_law(args.expect, "--expect")
        elif getattr(init, "__initcheck_law__", None) is not None:
            law = init.__initcheck_law__
        else:
            raise ValueError(
                f"{args.target} declares no law (@initcheck.expects); give one with --expect, "
                f'e.g. --expect "normal(std=0.01)"'
            )
        if args.haiku:
            init = adapters.from_haiku(init)
        report = initcheck.check(
            init,
            law,
            shapes=args.shapes,
            dtypes=args.dtypes,
            properties=args.properties,
            seed=args.seed,
            profile=_profile(args),
            origin=_origin_of_check(args),
        )
    except (ValueError, TypeError) as exc:
        print(f"initcheck check: {exc}", file=sys.stderr)
        return 2
    print(report)
    _write_report(args, "initcheck check", "initializer", report)
    return 0 if report.passed else 1


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


def _origin_of_check(args) -> str:
    """Python that defines ``init`` and ``law`` as ``initcheck check`` did (reproduction snippets)."""
    loader = f"init = initcheck.cli._load_target({args.target!r})"
    if args.haiku:
        loader += "\ninit = initcheck.adapters.from_haiku(init)"
    law = (
        f"law = initcheck.law_syntax.parse_law({args.expect!r})"
        if args.expect is not None
        else f"law = initcheck.cli._load_target({args.target!r}).__initcheck_law__"
    )
    return f"import initcheck.cli, initcheck.law_syntax\n{loader}\n{law}"


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
            origin=factory_origin(args.target),
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
    if args.command != "lock" and not args.xla_optimize:  # a lock records the values of the user's settings
        _xla.prefer_fast_compiles()
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
