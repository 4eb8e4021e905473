"""The audit at the sizes people train (issue 32's targets): for each model, in a fresh process, its
parameters, ``initcheck.audit`` (every property and the signal profile; wall time and the
process's peak RSS after it), then the model's own ``jax.jit(model.init)`` in the same process
(compile and run; skipped where its values do not fit this machine), and the ratio.

    python benchmarks/scale.py [--models gpt-35m,gpt2-small,resnet50,llama-1.3b,llama3-8b] [--memory 6GB]

Targets: audit <= 3x the jitted init and peak RSS <= 2x the parameters' bytes + 1.5 GB (GPT-2
small, ResNet-50); the Llama-3-8B-shaped config within 15 minutes and 6 GB peak RSS, conforming.
The models are ``tests/corpus/scale_models.py``'s.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("gpt-35m", "gpt2-small", "resnet50", "llama-1.3b", "llama3-8b")
JIT_LIMIT = 6 * 2**30  # the jitted init is run only where its values take less than this


def build(name: str):
    import jax.numpy as jnp

    from tests.corpus import scale_models as sm

    return {
        "gpt-35m": lambda: (sm.GPT(sm.GPT_35M), sm.tokens()),
        "gpt2-small": lambda: (sm.GPT(sm.GPT2_SMALL), sm.tokens()),
        "resnet50": lambda: (sm.ResNet50(), jnp.ones((1, 224, 224, 3))),
        "llama-1.3b": lambda: (sm.Llama(sm.LLAMA_1_3B), sm.tokens()),
        "llama3-8b": lambda: (sm.Llama(sm.LLAMA3_8B), sm.tokens()),
    }[name]()


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30


def measure(name: str, memory: str | None) -> dict:
    """One model, in this (fresh) process."""
    import jax

    import initcheck
    from tests.corpus import scale_models as sm

    model, x = build(name)
    count = sm.parameter_count(model, x)
    started = time.perf_counter()
    report = initcheck.audit(
        model,
        x,
        rng=0,
        memory=memory,
        progress=lambda line: print(f"  {time.perf_counter() - started:7.1f}s {line}", file=sys.stderr, flush=True),
    )
    audit_s, audit_peak = time.perf_counter() - started, peak_gb()
    init_s = None
    if 4 * count <= JIT_LIMIT:
        started = time.perf_counter()
        jax.block_until_ready(jax.jit(model.init)(jax.random.key(0), x))
        init_s = time.perf_counter() - started
    return {
        "model": name,
        "parameters": count,
        "parameter_gb": 4 * count / 2**30,
        "init_s": init_s,
        "audit_s": audit_s,
        "ratio": audit_s / init_s if init_s else None,
        "peak_rss_gb": audit_peak,
        "rss_target_gb": 2 * 4 * count / 2**30 + 1.5,
        "result": report.result,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--memory", default=None, help="the audit's memory= (default: from the free memory)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        sys.path.insert(0, str(ROOT))
        print(json.dumps(measure(args.one, args.memory)))
        return
    print(
        f"{'model':<12} {'params':>8} {'jit init':>9} {'audit':>8} {'ratio':>6} {'peak RSS':>9} {'RSS target':>10}  result"
    )
    for name in args.models.split(","):
        command = [sys.executable, __file__, "--one", name] + (["--memory", args.memory] if args.memory else [])
        out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        init = f"{row['init_s']:.1f}s" if row["init_s"] else "-"
        ratio = f"{row['ratio']:.1f}x" if row["ratio"] else "-"
        print(
            f"{row['model']:<12} {row['parameters'] / 1e6:>7.0f}M {init:>9} {row['audit_s']:>7.1f}s {ratio:>6} "
            f"{row['peak_rss_gb']:>8.2f}G {row['rss_target_gb']:>9.2f}G  {row['result']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
