"""XLA settings for processes that initcheck owns (the command line, its worker processes, the tests).

A check compiles every initializer for several (shape, dtype, key type, batch) combinations and
runs each compilation on a few million values at most, so compile time dominates. On CPU, XLA's
LLVM optimizations make a random-sampling kernel of a 3-D or 4-D shape take 2.5-4 s to compile;
``--xla_backend_optimization_level=0`` compiles it in 0.3 s and runs it 2-4x slower (measured on
the project's 2-core machine, jax 0.10.2), a large net gain. The library itself never changes a
user's process: ``initcheck.check`` runs under whatever XLA settings the caller has.
"""

from __future__ import annotations

import os

FAST_COMPILE_FLAG = "--xla_backend_optimization_level=0"


def prefer_fast_compiles() -> bool:
    """Add FAST_COMPILE_FLAG to XLA_FLAGS unless the user set the optimization level or JAX's
    backend has already started (then it would not apply). True when it was added."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" in flags or _backend_started():
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {FAST_COMPILE_FLAG}".strip()
    return True


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge
    except ImportError:  # a JAX without that module: assume the worst
        return True
    return bool(getattr(xla_bridge, "_backends", {}))
