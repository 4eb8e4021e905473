"""The ``initcheck`` command line."""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

from initcheck import __version__, profiles


def _report(args) -> int:
    import jax

    from initcheck import api, sampler
    from initcheck._catalog import catalog

    entries = [e for e in catalog(args.frameworks) if not args.entries or any(f in e.id for f in args.entries)]
    if not entries:
        print(f"initcheck report: --entries {' '.join(args.entries)} matches no catalog entry; "
              "see the ids in reports/conformance.json", file=sys.stderr)
        return 2
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"initcheck {__version__}: {len(entries)} catalog entries, profile={args.profile}, "
          f"seed={args.seed}, device={sampler.device_description()}", flush=True)
    results, started = [], time.perf_counter()
    for i, entry in enumerate(entries, 1):
        report = api.check(entry.init, entry.law, profile=args.profile, seed=args.seed)
        results.append((entry, report))
        word = "PASS" if report.passed else "FAIL"
        print(f"[{i:{len(str(len(entries)))}d}/{len(entries)}] {word} {entry.id} ({report.seconds:.1f}s)", flush=True)
    failed = [(e, r) for e, r in results if not r.passed]
    document = {
        "schema_version": 1, "initcheck": __version__, "jax": jax.__version__, "profile": args.profile,
        "seed": args.seed, "device": sampler.device_description(),
        "x64": bool(jax.config.jax_enable_x64), "threefry_partitionable": bool(jax.config.jax_threefry_partitionable),
        "default_prng_impl": str(jax.config.jax_default_prng_impl),
        "seconds": time.perf_counter() - started,
        "false_alarm_bound": sum(r.false_alarm_bound for _, r in results),
        "entries": [{"id": e.id, "framework": e.framework, "same_as": e.same_as, **r.to_dict()} for e, r in results],
    }
    path = out / "conformance.json"
    path.write_text(json.dumps(document, indent=1))
    width = max(len(e.id) for e in entries)
    print(f"\n{'entry'.ljust(width)}  verdicts  failed  result")
    for entry, report in results:
        print(f"{entry.id.ljust(width)}  {len(report.verdicts):8d}  {len(report.failures):6d}  "
              f"{'PASS' if report.passed else 'FAIL'}")
    print(f"\n{len(results) - len(failed)} passed, {len(failed)} failed in {document['seconds']:.0f}s; "
          f"false-alarm bound {document['false_alarm_bound']:.2g}; wrote {path}")
    for _, report in failed:
        print("\n" + report.failure_text())
    return 1 if failed else 0


def _list(args) -> int:
    from initcheck._catalog import catalog

    entries = catalog(args.frameworks)
    for framework in dict.fromkeys(e.framework for e in entries):
        group = [e for e in entries if e.framework == framework]
        print(f"{framework} ({len(group)} entries)")
        for e in group:
            same = f"  [same object as {e.same_as}]" if e.same_as else ""
            print(f"  {e.id}  ->  {e.law!r}{same}")
    print(f"{len(entries)} entries")
    return 0


def _frameworks(text: str) -> list[str]:
    from initcheck._catalog import FRAMEWORKS

    chosen = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in FRAMEWORKS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"{text!r}: choose a comma-separated subset of {','.join(FRAMEWORKS)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="initcheck", description="Verify neural-network initializers.")
    parser.add_argument("--version", action="version", version=f"initcheck {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="check the built-in catalog and write a JSON conformance report")
    report.add_argument("--out", default="reports", help="folder for conformance.json (default: reports)")
    report.add_argument("--profile", default="ci", choices=sorted(profiles.PROFILES), help="how hard to look")
    report.add_argument("--seed", type=int, default=0, help="base seed of every derived key (default: 0)")
    report.add_argument("--entries", nargs="*", default=[], metavar="TEXT",
                        help="only the entries whose id contains one of these texts")
    listing = commands.add_parser("list", help="list the built-in catalog, grouped by framework")
    for sub in (report, listing):
        sub.add_argument("--frameworks", type=_frameworks, default=None, metavar="jax,flax,haiku",
                         help="frameworks of the catalog to include (default: all)")
    report.set_defaults(run=_report)
    listing.set_defaults(run=_list)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
