"""Sampler: deterministic keys, vmapped draws equal to one-by-one calls, bounded chunks."""

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from initcheck import _sampler as sampler


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
    for batch in (1, 4, 64):
        np.testing.assert_array_equal(sampler.draw(init, (4, 3), jnp.float32, keys, batch=batch), expected)


def test_enough_draws_for_n_values():
    assert sampler.draws_for(1000, (5, 7)) == 29
    assert sampler.draws_for(1000, (100, 100)) == 1
    x = sampler.draw(jax.nn.initializers.normal(), (5, 7), jnp.bfloat16, sampler.case_keys(0, "p", 29), batch=8)
    assert x.shape == (29, 5, 7) and x.dtype == jnp.bfloat16


@pytest.mark.parametrize(
    "shape, chunk, typical, expected",
    [
        ((3, 3), 2**22, None, 1024),
        ((1024, 1024), 2**22, None, 4),
        ((4096, 4096), 2**22, None, 1),
        ((10,), 100, None, 8),
        ((64, 32), 2**22, 512, 512),
        ((1024, 1024), 2**22, 1, 1),
        ((256, 256), 2**22, 16, 16),
        ((3, 3), 2**22, 5, 8),
    ],
)
def test_batch_size_is_a_bounded_power_of_two(shape, chunk, typical, expected):
    assert sampler.batch_size(shape, chunk, typical) == expected


def test_device_is_recorded():
    assert sampler.device_description().startswith(jax.devices()[0].platform)


def test_call_with_timeout():
    assert sampler.call_with_timeout(lambda: 3, 1.0) == 3
    with pytest.raises(ZeroDivisionError):
        sampler.call_with_timeout(lambda: 1 / 0, 1.0)
    with pytest.raises(sampler.CallTimeout, match=r"did not return within 0\.2 s"):
        sampler.call_with_timeout(threading.Event().wait, 0.2)
