"""Sampler throughput against raw ``jax.random.normal`` on the same device.

For each shape, draws the ``ci`` sample (2^20 values) through initcheck's sampler (jit + vmap over
derived keys, chunked, copied to the host) and the same number of values with one jitted
``jax.random.normal`` call (also copied to the host); prints values per second for both.

Usage: python benchmarks/throughput.py
"""

from __future__ import annotations

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np

from initcheck import _sampler as sampler

N = 2**20


def best_of(fn, repeats=5) -> float:
    fn()  # compile
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    print(f"device: {sampler.device_description()}, {N} float32 values per draw")
    init = jax.nn.initializers.normal(1.0)
    raw = jax.jit(lambda key: jax.random.normal(key, (N,), jnp.float32))
    key = jax.random.PRNGKey(0)
    raw_time = best_of(lambda: np.asarray(raw(key)))
    print(f"raw jax.random.normal: {N / raw_time / 1e6:8.1f} M values/s")
    for shape in [(3, 3), (64, 32), (256, 256), (1024, 1024)]:
        count = sampler.draws_for(N, shape)
        keys = sampler.case_keys(0, "throughput", count)
        batch = sampler.batch_size(shape, 2**22, count)  # as a check() case does
        took = best_of(functools.partial(sampler.draw, init, shape, jnp.float32, keys, batch=batch))
        print(
            f"initcheck sampler {shape!s:12s}: {N / took / 1e6:8.1f} M values/s "
            f"({raw_time / took:.2f}x raw), {len(keys)} keys"
        )


if __name__ == "__main__":
    main()
