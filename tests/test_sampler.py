"""Sampler: deterministic keys, vmapped draws equal to one-by-one calls, bounded chunks."""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from initcheck import sampler


def test_case_keys_are_deterministic_and_distinct():
    a = sampler.case_keys(0, "moments|(3, 3)|float32", 5)
    np.testing.assert_array_equal(a, sampler.case_keys(0, "moments|(3, 3)|float32", 5))
    assert not np.array_equal(a, sampler.case_keys(1, "moments|(3, 3)|float32", 5))
    assert not np.array_equal(a, sampler.case_keys(0, "moments|(3, 4)|float32", 5))
    assert len({k.tobytes() for k in sampler.case_keys(0, "x", 1000)}) == 1000
    np.testing.assert_array_equal(sampler.case_keys(0, "x", 3), sampler.case_keys(0, "x", 700)[:3])


def test_draw_equals_one_call_per_key_whatever_the_chunking():
    init = jax.nn.initializers.he_normal()
    keys = sampler.case_keys(0, "draw", 37)
    one = jax.jit(lambda k: init(k, (4, 3), jnp.float32))
    expected = np.stack([np.asarray(one(k)) for k in keys])
    for chunk in (12, 48, 2**22):
        np.testing.assert_array_equal(sampler.draw(init, (4, 3), jnp.float32, keys, chunk_elements=chunk), expected)


def test_pooled_reaches_n_values():
    x = sampler.pooled(jax.nn.initializers.normal(), (5, 7), jnp.bfloat16, seed=0, case_id="p", n=1000)
    assert x.shape == (29, 5, 7) and x.dtype == jnp.bfloat16


@pytest.mark.parametrize("shape, chunk, expected", [((3, 3), 2**22, 1024), ((1024, 1024), 2**22, 4), ((4096, 4096), 2**22, 1), ((10,), 100, 8)])
def test_batch_size_is_a_bounded_power_of_two(shape, chunk, expected):
    assert sampler.batch_size(shape, chunk) == expected


def test_device_is_recorded():
    assert sampler.device_description().startswith(jax.devices()[0].platform)


def test_call_with_timeout():
    assert sampler.call_with_timeout(lambda: 3, 1.0) == 3
    with pytest.raises(ZeroDivisionError):
        sampler.call_with_timeout(lambda: 1 / 0, 1.0)
    with pytest.raises(sampler.CallTimeout, match="did not return within 0.2 s"):
        sampler.call_with_timeout(threading.Event().wait, 0.2)
