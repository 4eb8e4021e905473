"""The audit at the sizes people train (issue 32's targets): for each model, in a fresh process, its
parameters, ``initcheck.audit`` (every property and the signal profile; wall time and the
process's peak RSS after it), then the model's own ``jax.jit(model.init)`` in the same process
(compile and run; skipped where its values do not fit this machine), and the ratio.

    python benchmarks/scale.py [--models gpt-35m,gpt2-small,resnet50,llama-1.3b,llama3-8b] [--memory 6GB]
    python benchmarks/scale.py --models llama3-8b-nnx,llama3-8b-haiku --memory 6GB

Targets: audit <= 3x the jitted init and peak RSS <= 2x the parameters' bytes + 1.5 GB (GPT-2
small, ResNet-50); the Llama-3-8B-shaped config within 15 minutes and 6 GB peak RSS, conforming.
The models are ``tests/corpus/scale_models.py``'s.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ("gpt-35m", "gpt2-small", "resnet50", "llama-1.3b", "llama3-8b")
OTHERS = ("llama3-8b-nnx", "llama3-8b-haiku")  # the 8B shape in Flax nnx and in Haiku (not run by default)
JIT_LIMIT = 6 * 2**30  # the jitted init is run only where its values take less than this


@dataclasses.dataclass
class Built:
    """A model as ``initcheck.audit`` takes it, its own jitted init (a function of a key) and its
    parameter count."""

    model: object
    inputs: tuple
    options: dict
    init: Callable
    count: int


def build(name: str) -> Built:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from tests.corpus import scale_models as sm

    def linen(model, *inputs):
        return Built(model, inputs, {}, lambda key: model.init(key, *inputs), sm.parameter_count(model, *inputs))

    if name == "llama3-8b-nnx":
        make = lambda key: nnx.state(sm.NnxLlama(sm.LLAMA3_8B, rngs=nnx.Rngs(params=key)))
        count = sum(math.prod(x.shape) for x in jax.tree_util.tree_leaves(jax.eval_shape(make, jax.random.key(0))))
        return Built(sm.NnxLlama, (sm.LLAMA3_8B,), {"call_args": (sm.tokens(),)}, make, count)
    if name == "llama3-8b-haiku":
        model, x = sm.haiku_llama(sm.LLAMA3_8B), sm.tokens()
        shapes = jax.eval_shape(model.init, jax.random.key(0), x)
        count = sum(math.prod(p.shape) for p in jax.tree_util.tree_leaves(shapes))
        return Built(model, (x,), {}, lambda key: model.init(key, x), count)
    return {
        "gpt-35m": lambda: linen(sm.GPT(sm.GPT_35M), sm.tokens()),
        "gpt2-small": lambda: linen(sm.GPT(sm.GPT2_SMALL), sm.tokens()),
        "resnet50": lambda: linen(sm.ResNet50(), jnp.ones((1, 224, 224, 3))),
        "llama-1.3b": lambda: linen(sm.Llama(sm.LLAMA_1_3B), sm.tokens()),
        "llama3-8b": lambda: linen(sm.Llama(sm.LLAMA3_8B), sm.tokens()),
    }[name]()


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30


def measure(name: str, memory: str | None) -> dict:
    """One model, in this (fresh) process."""
    import jax

    import initcheck

    built = build(name)
    started = time.perf_counter()
    report = initcheck.audit(
        built.model,
        *built.inputs,
        rng=0,
        memory=memory,
        progress=lambda line: print(f"  {time.perf_counter() - started:7.1f}s {line}", file=sys.stderr, flush=True),
        **built.options,
    )
    audit_s, audit_peak = time.perf_counter() - started, peak_gb()
    init_s, count = None, built.count
    if 4 * count <= JIT_LIMIT:
        started = time.perf_counter()
        jax.block_until_ready(jax.jit(built.init)(jax.random.key(0)))
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
        f"{'model':<16} {'params':>8} {'jit init':>9} {'audit':>8} {'ratio':>6} {'peak RSS':>9} {'RSS target':>10}  result"
    )
    for name in args.models.split(","):
        command = [sys.executable, __file__, "--one", name] + (["--memory", args.memory] if args.memory else [])
        out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
        row = json.loads(out.stdout.strip().splitlines()[-1])
        init = f"{row['init_s']:.1f}s" if row["init_s"] else "-"
        ratio = f"{row['ratio']:.1f}x" if row["ratio"] else "-"
        print(
            f"{row['model']:<16} {row['parameters'] / 1e6:>7.0f}M {init:>9} {row['audit_s']:>7.1f}s {ratio:>6} "
            f"{row['peak_rss_gb']:>8.2f}G {row['rss_target_gb']:>9.2f}G  {row['result']}",
            flush=True,
        )


if __name__ == "__main__":
    main()
