"""Audit a Haiku ``Transformed``: watch ``init`` create each parameter (a parameter creator), derive
the key sequence with :mod:`initcheck.derivation`, and run each declared initializer on its keys."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools

import numpy as np

from initcheck import derivation
from initcheck.audit._declared import declared_law
from initcheck.audit._parameter import Parameter

SKIP_AHEAD = 64  # keys drawn outside initializers (e.g. dropout during init) that a parameter may follow
QUEUED = 16  # derived keys queued for one initializer; beyond them the sequence continues from its state


@dataclasses.dataclass
class _Created:
    path: str
    shape: tuple[int, ...]
    dtype: object
    init: object
    value: object


@contextlib.contextmanager
def _watching(created: list[_Created]):
    from haiku._src import base  # hk.custom_creator refuses to run outside a transform

    def creator(next_creator, shape, dtype, init, context):
        value = next_creator(shape, dtype, init)
        created.append(_Created(context.full_name, tuple(shape), dtype, init, value))
        return value

    with base.custom_creator_unsafe(creator):
        yield


def _run_on(init, shape, dtype, state, probe: bool):
    """``init(shape, dtype)`` drawing from the sequence state ``(spare, queued keys)``; with
    ``probe``, also the key drawn right after it (to count the keys it used)."""
    import haiku as hk

    def run():
        with hk.with_rng(state):
            value = init(shape, dtype)
            return value, (hk.next_rng_key() if probe else None)

    return hk.transform(run).apply({}, None)


def _state_at(walk, at: int) -> tuple:
    """A sequence state whose next keys are the derived keys from #``at`` on: the first QUEUED of
    them queued as they are, then the derived state after them continues."""
    spare, rest = walk[at + QUEUED - 1][1]
    return spare, tuple(key for key, _ in walk[at:at + QUEUED]) + rest


def record(transformed, inputs, rng, *, reserve_size: int | None = None) -> list[Parameter]:
    if reserve_size is None:
        from haiku._src import config

        reserve_size = config.get_config().rng_reserve_size
    created: list[_Created] = []
    with _watching(created):
        transformed.init(rng, *inputs)
    count = 4 * len(created) + SKIP_AHEAD + QUEUED
    walk = list(itertools.islice(derivation.haiku_walk(rng, reserve_size=reserve_size), count + QUEUED))
    keys = [key for key, _ in walk[:count]]
    position, parameters = 0, []
    for c in created:
        parameter, used = _parameter(c, walk, keys, position, reserve_size)
        parameters.append(parameter)
        position += used
    return parameters


def _parameter(c: _Created, walk, keys, position: int, reserve_size: int) -> tuple[Parameter, int]:
    """The parameter, and how many of the derived ``keys`` it accounts for (0 when not reproduced)."""
    law = declared_law(c.init)
    actual = np.asarray(c.value)
    for skipped in range(min(SKIP_AHEAD, len(keys) - position)):
        at = position + skipped
        value, probe = _run_on(c.init, c.shape, c.dtype, _state_at(walk, at), probe=True)
        if not np.array_equal(np.asarray(value), actual, equal_nan=True):
            continue
        probe_bytes = derivation.key_bytes(probe)
        used = next((i - at for i in range(at, len(keys)) if derivation.key_bytes(keys[i]) == probe_bytes), None)
        if used is None:
            break
        where = f"key #{at + 1} of the sequence" if used == 1 else f"keys #{at + 1}..#{at + used}"
        note = f", after {skipped} keys drawn outside initializers" if skipped else ""
        return Parameter(path=c.path, value=c.value, declared=c.init, expected=value, law=law,
                         key=keys[at] if used else None,
                         derivation=(f"{where} of split(state, {reserve_size + 1}){note}" if used else
                                     "no key: a deterministic initializer")), used + skipped
    expected, _ = _run_on(c.init, c.shape, c.dtype, _state_at(walk, position), probe=False)
    return Parameter(path=c.path, value=c.value, declared=c.init, law=law, expected=expected, key=keys[position],
                     derivation=f"key #{position + 1} of the sequence",
                     problem=f"none of keys #{position + 1}..#{position + SKIP_AHEAD} of the Haiku sequence "
                             "reproduces it with its declared initializer"), 0
