"""The grammar of the ``initcheck`` command line: one function per subcommand adds its parser,
options and help; the types below turn option text into values or argparse errors.

Light on purpose: building the parser imports neither JAX nor scipy (``initcheck --help`` is
instant); what needs them is imported where an option's value is read."""

from __future__ import annotations

import argparse

from initcheck import _frameworks as frameworks
from initcheck import _profiles as profiles
from initcheck import _xla
from initcheck._frameworks import FRAMEWORKS
from initcheck._property_registry import AUDIT_PROPERTIES, CHECK_PROPERTIES
from initcheck._version import __version__
from initcheck.law_syntax import EXAMPLES

Commands = argparse._SubParsersAction  # what add_subparsers returns


def root_parser() -> tuple[argparse.ArgumentParser, Commands]:
    """``initcheck`` with ``--version``, and the group its subcommands join."""
    parser = argparse.ArgumentParser(prog="initcheck", description="Verify neural-network initializers.")
    parser.add_argument("--version", action="version", version=f"initcheck {__version__}")
    return parser, parser.add_subparsers(dest="command", required=True)


def report_parser(commands: Commands) -> argparse.ArgumentParser:
    """``initcheck report``: the built-in catalog, checked into the HTML and JSON reports."""
    report = commands.add_parser(
        "report",
        help="check the built-in catalog and write the HTML and JSON conformance reports",
        description="Check every entry of the built-in catalog (see initcheck list) in each of its dtypes, on one "
        "process per core, print progress and a summary, and write OUT/conformance.html and OUT/conformance.json. "
        "Exit status 1 when something unexpected fails (a failure no known defect explains, or a known defect "
        "that should show and did not), 2 on bad arguments.",
    )
    report.add_argument(
        "--out", default="reports", help="folder for conformance.html and conformance.json (default: reports)"
    )
    report.add_argument(
        "--entries", nargs="*", default=[], metavar="TEXT", help="only the entries whose id contains one of these texts"
    )
    report.add_argument(
        "--jobs", type=int, default=0, metavar="N", help="processes to check entries on (default: one per core)"
    )
    report.add_argument(
        "--dtypes",
        type=_dtypes,
        default=None,
        metavar="float32,bfloat16,...",
        help="only these of each entry's dtypes (default: all of them)",
    )
    _add_profile_and_seed(report)
    _add_xla_optimize(report)
    _add_compile_cache(report)
    _add_frameworks(report, "frameworks of the catalog to include (default: every installed one)")
    _add_x64(report)
    return report


def check_parser(commands: Commands) -> argparse.ArgumentParser:
    """``initcheck check``: one initializer against a law."""
    check = commands.add_parser(
        "check",
        help="check one initializer against a law",
        description="Check one initializer against a law and print every verdict: MODULE:ATTR (its law from "
        "--expect, its @initcheck.expects mark, or the catalog when it is a catalog entry's function and "
        "arguments), or a catalog id as initcheck list prints it (its catalog law, its known defects marked). "
        "Exit status 1 if it does not conform (failures that a known framework defect explains alone do not "
        "count), 2 on bad arguments.",
        epilog=f"Laws: {EXAMPLES}. Nothing is evaluated: the text is parsed, and only laws and literal "
        "arguments are accepted.",
    )
    check.add_argument(
        "target",
        metavar="MODULE:ATTR|CATALOG_ID",
        help="the initializer, e.g. mypkg.inits:my_init, jax.nn.initializers:variance_scaling(2.0, 'fan_in', "
        "'normal') or the catalog id jax.nn.initializers.he_normal()",
    )
    check.add_argument(
        "--expect",
        metavar="LAW",
        default=None,
        help='the law it promises, e.g. "normal(std=0.01)" (default: its @initcheck.expects law, else its catalog law)',
    )
    check.add_argument(
        "--shapes", type=_shapes, default=None, metavar="64x32,128", help="shapes to check (default: drawn for the law)"
    )
    check.add_argument(
        "--dtypes", type=_dtypes, default=None, metavar="float32,bfloat16", help="dtypes to check (default: float32)"
    )
    check.add_argument(
        "--properties",
        type=_properties,
        default=None,
        metavar="moments,distribution",
        help="properties to check (default: all)",
    )
    check.add_argument(
        "--time-limit",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="seconds one call of the initializer may take before it counts as hung (default: the profile's, 120)",
    )
    check.add_argument(
        "--haiku",
        action="store_true",
        help="the target is a Haiku-style init(shape, dtype) that draws keys with hk.next_rng_key() "
        "(recognized by itself when its first parameter is not a key)",
    )
    _add_report_files(check)
    _add_profile_and_seed(check)
    _add_xla_optimize(check)
    _add_compile_cache(check)
    return check


def audit_parser(commands: Commands) -> argparse.ArgumentParser:
    """``initcheck audit``: one model, every value it creates at init."""
    audit = commands.add_parser(
        "audit",
        help="audit one model: every value it creates at init, its key and its law",
        description="Audit the model MODULE:FACTORY() returns ((model, *inputs) or initcheck.Model(...)): the "
        "same verdicts as pytest --initcheck's items; exit status 1 if it does not conform (or is "
        "PARTIAL with --strict; failures that a known framework defect explains alone do not count), "
        "2 on bad arguments.",
    )
    audit.add_argument(
        "target",
        metavar="MODULE:FACTORY",
        help="a function returning (model, *inputs) or an initcheck.Model, e.g. mypkg.models:resnet",
    )
    audit.add_argument(
        "--properties",
        type=_audit_properties,
        default=None,
        metavar="derivation,moments",
        help="audit properties to check, and 'signal' for the signal profile (default: all)",
    )
    audit.add_argument(
        "--strict",
        action="store_true",
        help="a PARTIAL model (values without a known law or a modelled key derivation) fails",
    )
    audit.add_argument(
        "--memory",
        default=None,
        metavar="SIZE",
        help="the most memory the audit may use, e.g. 6GB (default: 80%% of the free memory); a model that does "
        "not fit is recorded abstractly and checked one value at a time (Flax linen)",
    )
    _add_report_files(audit)
    _add_profile_and_seed(audit)
    _add_xla_optimize(audit)
    _add_compile_cache(audit)
    return audit


def list_parser(commands: Commands) -> argparse.ArgumentParser:
    """``initcheck list``: the built-in catalog."""
    listing = commands.add_parser(
        "list",
        help="list the built-in catalog, grouped by framework",
        description="Print the built-in catalog grouped by framework: each entry's id (which initcheck check and "
        "initcheck report --entries accept), its law, dtypes, notes and known defects. Nothing is sampled.",
    )
    _add_frameworks(listing, "frameworks of the catalog to include (default: every installed one)")
    _add_x64(listing)
    return listing


def lock_parser(commands: Commands) -> argparse.ArgumentParser:
    """``initcheck lock``: the exact initial values of ``[tool.initcheck]``'s targets against a lock file."""
    locking = commands.add_parser(
        "lock",
        help="record or compare the exact initial values of [tool.initcheck]'s targets in a lock file",
        description="Compare every declared initializer, model and catalog framework of [tool.initcheck] with the "
        "lock file (SHA-256 of every initial value, per backend, with the environment that made them); targets "
        "the lock lacks are added. A changed value is named with its likely cause, found by re-deriving it under "
        "the alternative settings. Exit status 1 on a change (without --update), 2 on bad arguments. Runs with "
        "this process's settings: flags that a conftest.py sets apply under pytest --initcheck --initcheck-lock only.",
    )
    locking.add_argument(
        "--lock",
        metavar="PATH",
        default=None,
        help="the lock file (default: [tool.initcheck] lock, else initcheck.lock)",
    )
    locking.add_argument("--update", action="store_true", help="rewrite the lock from this run's values")
    locking.add_argument(
        "--config",
        default="pyproject.toml",
        metavar="PATH",
        help="the pyproject.toml to read (default: ./pyproject.toml)",
    )
    _add_frameworks(locking, "catalog frameworks to lock too (default: [tool.initcheck] frameworks)")
    locking.add_argument(
        "--seed", type=int, default=None, help="base seed of the fixed keys (default: [tool.initcheck] seed, else 0)"
    )
    _add_report_files(locking)
    return locking


def _add_report_files(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--json", metavar="PATH", default=None, help="also write the JSON report to PATH")
    sub.add_argument("--html", metavar="PATH", default=None, help="also write the HTML report to PATH")


def _add_profile_and_seed(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--profile", default="ci", choices=sorted(profiles.PROFILES), help="how hard to look")
    sub.add_argument("--seed", type=int, default=0, help="base seed of every derived key (default: 0)")


def _add_xla_optimize(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--xla-optimize",
        action="store_true",
        help="keep XLA's default compiler settings (by default initcheck compiles with "
        f"{_xla.FAST_COMPILE_SETTING}: compiles dominate a check)",
    )


def _add_compile_cache(sub: argparse.ArgumentParser) -> None:
    caching = sub.add_mutually_exclusive_group()
    caching.add_argument(
        "--compile-cache",
        metavar="DIR",
        default=None,
        help="keep XLA's compiled code under DIR (default: $XDG_CACHE_HOME/initcheck/xla, else "
        "~/.cache/initcheck/xla) and reuse it in later runs, in a subfolder named after a hash of "
        "this machine's jax/jaxlib versions, backend, device, XLA flags and CPU, so that no run "
        "loads code compiled for another; pruned, oldest first, past 1 GiB",
    )
    caching.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="keep no compiled code between runs (`report` still shares its compiles between "
        "its processes, through a temporary folder of this run only)",
    )


def _add_frameworks(sub: argparse.ArgumentParser, help: str) -> None:
    sub.add_argument("--frameworks", type=_frameworks, default=None, metavar=",".join(FRAMEWORKS), help=help)


def _add_x64(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--x64",
        action="store_true",
        help="turn on JAX's x64 mode first, which adds float64 and complex128 to the dtypes",
    )


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds, e.g. --time-limit 30")
    return seconds


def _shapes(text: str) -> list[tuple[int, ...]]:
    """``64x32,128,3x3x16x32`` -> [(64, 32), (128,), (3, 3, 16, 32)]."""
    try:
        shapes = [tuple(int(side) for side in shape.split("x")) for shape in text.split(",") if shape.strip()]
    except ValueError:
        shapes = []
    if not shapes or any(side < 0 for shape in shapes for side in shape):
        raise argparse.ArgumentTypeError(f"{text!r}: write shapes as sides joined by x, comma-separated: 64x32,128")
    return shapes


def _subset(text: str, known) -> list[str]:
    """A non-empty comma-separated subset of ``known``, or an argparse error listing ``known``."""
    chosen = [item.strip() for item in text.split(",") if item.strip()]
    if not chosen or any(item not in known for item in chosen):
        raise argparse.ArgumentTypeError(f"{text!r}: choose a comma-separated subset of {','.join(known)}")
    return chosen


def _properties(text: str) -> list[str]:
    return _subset(text, list(CHECK_PROPERTIES))


def _audit_properties(text: str) -> list[str]:
    from initcheck._audit import SIGNAL  # here, not at the top: the parser's help imports no JAX

    return _subset(text, [*AUDIT_PROPERTIES, SIGNAL])


def _frameworks(text: str) -> list[str]:
    chosen = _subset(text, FRAMEWORKS)
    for framework in chosen:
        if reason := frameworks.missing_reason(framework):
            raise argparse.ArgumentTypeError(f"{framework}: {reason}")
    return chosen


def _dtypes(text: str) -> list[str]:
    return _subset(text, ("float32", "bfloat16", "float16", "float64", "complex64", "complex128"))
