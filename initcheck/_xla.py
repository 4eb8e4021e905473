"""XLA settings for processes that initcheck owns (the command line, its worker processes, the tests).

A check compiles every initializer for several (shape, dtype, key type, batch) combinations and
runs each compilation on a few million values at most, so compile time dominates. CPU seconds of
the ``ci`` check of four catalog entries (``benchmarks/xla_flags.py``; 2-core machine, jax 0.10.2;
the verdicts are the same under every setting):

=========================================================  =========  ========  ======  ==========
XLA_FLAGS                                                  he_normal  VarScale  sparse  Orthogonal
=========================================================  =========  ========  ======  ==========
(XLA's defaults)                                           60         -         -       -
``--xla_backend_optimization_level=0``                     40         39        56      11.2
``--xla_backend_optimization_level=2`` + emitters off       27         30        41      9.2
=========================================================  =========  ========  ======  ==========

("emitters off" is ``--xla_cpu_use_fusion_emitters=false``: XLA's newer CPU fusion emitters cost
more to compile than they save on these small sampling kernels; with them on, levels 0, 1 and 2
all cost he_normal about 38-40 s, XLA's default level 3 60 s.) The library itself never changes a
user's process: ``initcheck.check`` runs under whatever XLA settings the caller has.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import platform

# (the setting's name, the flag that sets it, whether it needs a verified jaxlib); none is added
# where the user set any of these names. XLA aborts the process on a flag it does not know: the
# emitter flag is added only to the jaxlib releases it was verified in (0.10.0, 0.10.1, 0.10.2).
FAST_COMPILE_FLAGS = (
    ("xla_backend_optimization_level", "--xla_backend_optimization_level=2", False),
    ("xla_cpu_use_fusion_emitters", "--xla_cpu_use_fusion_emitters=false", True),
)
FAST_COMPILE_SETTING = " ".join(flag for _, flag, _ in FAST_COMPILE_FLAGS)
VERIFIED_JAXLIB = "0.10."


def prefer_fast_compiles() -> bool:
    """Add FAST_COMPILE_FLAGS to XLA_FLAGS unless the user set one of those settings or JAX's
    backend has already started (then they would not apply). True when they were added."""
    flags = os.environ.get("XLA_FLAGS", "")
    if any(name in flags for name, _, _ in FAST_COMPILE_FLAGS) or _backend_started():
        return False
    verified = _jaxlib_verified()
    added = [flag for _, flag, needs_verified in FAST_COMPILE_FLAGS if verified or not needs_verified]
    os.environ["XLA_FLAGS"] = " ".join([flags, *added]).strip()
    return True


COMPILE_CACHE_SETTINGS = {  # every compile is kept, however short: a check's compiles are many and small
    "jax_persistent_cache_min_compile_time_secs": 0,
    "jax_persistent_cache_min_entry_size_bytes": -1,
}


@contextlib.contextmanager
def compile_cache(folder):
    """Keep compiled code in ``folder`` (JAX's persistent compilation cache) while the block runs:
    worker processes started in it inherit the setting through the environment and load what
    another one compiled, and a later run with the same folder mostly loads instead of compiling
    (README, "Catalog run"). Set before the block's first compile; the previous settings come back
    after it."""
    import jax  # lazy: configured before JAX's cache starts

    settings = {"jax_compilation_cache_dir": str(folder), **COMPILE_CACHE_SETTINGS}
    saved_environment = {name.upper(): os.environ.get(name.upper()) for name in settings}
    saved_config = {name: getattr(jax.config, name) for name in settings}
    for name, value in settings.items():
        os.environ[name.upper()] = str(value)
        jax.config.update(name, value)
    _reset_cache()
    try:
        yield
    finally:
        for name, value in saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for name, value in saved_config.items():
            jax.config.update(name, value)
        _reset_cache()


CACHE_LIMIT_BYTES = 1 << 30  # a machine's cache folder is pruned, oldest files first, past 1 GiB
CPU_FIELDS = ("model name", "flags", "Features", "CPU implementer", "CPU architecture", "CPU part")


def cpu_identity(cpuinfo: str | None = None) -> str:
    """The CPU as far as it decides XLA's machine code: its model name and instruction-set flags
    (``/proc/cpuinfo`` on Linux; ``platform``'s words elsewhere)."""
    if cpuinfo is None:
        try:
            cpuinfo = pathlib.Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        name, _, value = (part.strip() for part in line.partition(":"))
        if name in CPU_FIELDS and name not in fields:  # the first core speaks for all
            fields[name] = " ".join(sorted(value.split())) if name in ("flags", "Features") else value
    if not fields:
        fields = {"machine": platform.machine(), "processor": platform.processor()}
    return json.dumps(fields, sort_keys=True)


def machine_identity() -> dict[str, str]:
    """Everything that decides the machine code XLA compiles: jax and jaxlib versions, backend and
    device kind, the XLA flags in force and the CPU (starts JAX's backend: call it after the flags
    are set)."""
    import jax  # lazy: the XLA flags are set first
    from jaxlib import version

    device = jax.devices()[0]
    return {
        "jax": jax.__version__,
        "jaxlib": version.__version__,
        "backend": device.platform,
        "device_kind": str(device.device_kind),
        "xla_flags": " ".join(os.environ.get("XLA_FLAGS", "").split()),
        "cpu": cpu_identity(),
    }


def machine_key(identity: dict[str, str]) -> str:
    """A folder name for ``identity``: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def default_cache_root() -> pathlib.Path:
    """``$XDG_CACHE_HOME/initcheck/xla`` (``~/.cache/initcheck/xla`` without it)."""
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "initcheck" / "xla"


def machine_folder(root, identity: dict[str, str] | None = None) -> pathlib.Path:
    """The cache folder of this machine (``identity``, default ``machine_identity()``) under
    ``root``: code compiled elsewhere, or under other flags or versions, is never loaded."""
    return pathlib.Path(root) / machine_key(identity or machine_identity())


def ready_machine_folder(root=None) -> pathlib.Path:
    """This machine's cache folder under ``root`` (default ``default_cache_root()``), absolute,
    made if missing and pruned past ``CACHE_LIMIT_BYTES``."""
    folder = machine_folder(root or default_cache_root()).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    prune(folder)
    return folder


def prune(folder, limit: int = CACHE_LIMIT_BYTES) -> int:
    """Delete the oldest files of ``folder`` (by modification time) until the rest holds at most
    ``limit`` bytes; returns how many were deleted."""
    files = [p for p in pathlib.Path(folder).rglob("*") if p.is_file()]
    sizes = {p: p.stat().st_size for p in files}
    total, deleted = sum(sizes.values()), 0
    for path in sorted(files, key=lambda p: p.stat().st_mtime):
        if total <= limit:
            break
        with contextlib.suppress(OSError):
            path.unlink()
            total, deleted = total - sizes[path], deleted + 1
    return deleted


def _reset_cache() -> None:
    """Make JAX open the cache folder now configured: it opens one once per process otherwise."""
    try:
        from jax._src import compilation_cache  # lazy: configured before JAX's cache starts
    except ImportError:
        return
    reset = getattr(compilation_cache, "reset_cache", None)
    if reset is not None:
        reset()


def _jaxlib_verified() -> bool:
    try:
        from jaxlib import version  # lazy: configured before JAX's cache starts
    except ImportError:
        return False
    return version.__version__.startswith(VERIFIED_JAXLIB)


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge  # lazy: configured before JAX's cache starts
    except ImportError:  # a JAX without that module: assume the worst
        return True
    return bool(getattr(xla_bridge, "_backends", {}))
