"""How a model's values are made: all at once by an eager init, by one jitted init, or one value at
a time within a memory budget.

``memory=`` (bytes, or text such as ``"6GB"``; default: 80% of the memory the machine has free)
bounds what the audit may hold. A model whose in-memory audit fits (``IN_MEMORY_FACTOR`` times
its values' bytes, plus ``BASE`` for JAX and the checks) is audited in memory: a small one
(``ONE_INIT_ABOVE``) initialized eagerly while initcheck watches (``EAGER``), a larger one
recorded abstractly and made by one jitted init of the whole model, run once per root key
(``ONE_INIT``: the model's own compiled program, not an eager run of each of its operations).
Otherwise (``BY_VALUE``) its init is recorded abstractly (``Framework.record_abstract``:
``jax.eval_shape``, no value made) and each value is made and checked alone, then released:

- a value that fits (``VALUE_FACTOR`` times its bytes within what the budget leaves) is made
  three times: by the model's own init pruned to it (one jitted program; XLA removes every other
  value's computation) and by its declared initializer on its derived key(s); ``derivation``
  compares the two bit for bit; the model's own init from another root key must change it (key
  use); every other check runs as in memory;
- a larger one (a stacked value under ``nn.scan`` whose slices only exist all at once in the
  model's own program) is made slice by slice by its declared initializer; its keys are checked
  (no slice or other value shares one), its statistics are taken in one pass over the slices
  (``_sampling.survey``), and ``derivation`` says that the model's own values were not compared.
"""

from __future__ import annotations

import dataclasses
import os
import re

import jax
import jax.numpy as jnp
import numpy as np

from initcheck._audit import _key_use, _sampling
from initcheck._frameworks.registry import Framework
from initcheck._record import Model, Parameter

GB = 2**30
ONE_INIT_ABOVE = 64 * 2**20  # values' bytes above which a model that fits is made by one jitted init (ONE_INIT)
BASE = int(1.5 * GB)  # JAX, the model's code and the checks' own arrays
IN_MEMORY_FACTOR = 8  # peak bytes of an in-memory audit per byte of the model's values (measured, benchmarks/scale.py)
FIXED_VALUES = 2**26  # integers and keys (a decode cache's index, random state) are made before the forward trace
# JAX's CPU samplers peak at about 4x the bytes they return (random bits, floats, erfinv; measured: normal of
# (128256, 4096) float32, 2.1 GB, peaks at 8.1 GB eager or jitted), and a value made whole holds two copies
# while the third is made: 2 + 4
VALUE_FACTOR = 6
SLICE_FACTOR = 4  # one slice made by its declared initializer (the sampler's peak)
_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20, "mib": 2**20}
_UNITS |= {"g": GB, "gb": GB, "gib": GB, "t": 2**40, "tb": 2**40, "tib": 2**40}


def available() -> int:
    """The memory the machine has free now (``MemAvailable``), in bytes."""
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def parse(memory) -> int:
    """``memory`` in bytes: an int, text such as ``"6GB"`` or ``"512 MiB"`` (binary units), or None
    for 80% of the free memory."""
    if memory is None:
        return int(0.8 * available())
    if isinstance(memory, (int, np.integer)) and not isinstance(memory, bool):
        value = int(memory)
    elif isinstance(memory, str) and (m := re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", memory)):
        if m.group(2).lower() not in _UNITS:
            raise ValueError(
                f"memory={memory!r}: unknown unit {m.group(2)!r}; write e.g. memory='6GB' or memory=6 * 2**30"
            )
        value = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    else:
        raise TypeError(f"memory={memory!r} must be bytes (an int) or text such as '6GB'")
    if value < BASE:
        raise ValueError(
            f"memory={memory!r} is below the {BASE / GB:.1f} GB that JAX and the checks need; give at least '2GB'"
        )
    return value


EAGER, ONE_INIT, BY_VALUE = "eager", "one jitted init", "one value at a time"


def mode(value_bytes: int, memory: int, abstract: bool) -> str:
    """How to make a model's values (``abstract``: its framework can record its init abstractly)."""
    if IN_MEMORY_FACTOR * value_bytes + BASE <= memory:
        return ONE_INIT if abstract and value_bytes > ONE_INIT_ABOVE else EAGER
    return BY_VALUE


def gigabytes(n: int) -> str:
    return f"{n / GB:.2f} GB"


def value_limit(memory: int) -> int:
    """The most bytes one value may have to be made whole."""
    return max(0, (memory - BASE) // VALUE_FACTOR)


def made(p: Parameter, limit: int) -> Parameter | None:
    """``p`` with its value made (the model's own init of it) and its expected value (its declared
    initializer on its derived keys), or None when it is larger than ``limit`` bytes."""
    lazy = p.lazy
    if lazy is None:
        return p
    if p.nbytes > limit:
        return None
    expected = None
    if lazy.declared is not None and not p.unaudited:
        slices = jnp.stack([jnp.reshape(lazy.declared(i), p.slice_shape) for i in range(p.slice_count)])
        expected = p.unslices(slices)
    try:
        if not isinstance(p.value, jax.ShapeDtypeStruct):
            value = p.value  # made already (ONE_INIT)
        else:
            value = jax.block_until_ready(lazy.own()) if lazy.own is not None else None
        why = lazy.own_refusal
    except Exception as exc:  # noqa: BLE001 - a program initcheck cannot prune is a named gap, not a crash
        value, why = None, f"{type(exc).__name__}: {str(exc)[:200]}"
    if value is None:
        if expected is None:
            return dataclasses.replace(
                p, lazy=None, unaudited=f"the model's own init could not be pruned to it ({why})"
            )
        instead = (
            f"the model's own init could not be pruned to it ({why}); its declared initializer's values were "
            "checked instead"
        )
        return dataclasses.replace(
            p,
            value=expected,
            expected=None,
            lazy=None,
            underived=f"{p.underived}; {instead}" if p.underived else instead,
        )
    return dataclasses.replace(p, value=value, expected=expected, lazy=None)


def streamed_derivation(p: Parameter, memory: int) -> tuple[str, str]:
    """(problem, note) of a value made slice by slice: two slices with one derived key are a
    problem; otherwise the note says what was and was not compared."""
    law = p.intended or p.law
    if p.stacked and p.key is not None and (law is None or law.random):  # a constant's key draws nothing
        seen: dict[bytes, int] = {}
        data = np.asarray(jax.random.key_data(p.key)).reshape(p.slice_count, -1)
        for i, row in enumerate(data):
            first = seen.setdefault(row.tobytes(), i)
            if first != i:
                return (
                    f"{p.path}: slices {first} and {i} of {p.slice_count} have the same derived key "
                    f"({p.transform or 'the transform'} hands every slice the same key: split_rngs off?)",
                    "",
                )
    return "", (
        f"the model's own init of {p.path} ({gigabytes(p.nbytes)}{', all ' + str(p.slice_count) + ' slices at once' if p.stacked else ''}) "
        f"exceeds what the memory budget ({gigabytes(memory)}) leaves for one value: its keys were derived and "
        "checked (no other value or slice shares one) and its declared initializer's values were tested slice by "
        "slice, but the model's own values were not compared with them"
    )


def choose_mode(framework: Framework, target: Model, budget: int, say) -> str:
    """How the model's values are made (``mode``); a model whose shapes cannot be traced is
    initialized eagerly, as before. Raises ValueError when it does not fit and its framework has no
    abstract path."""
    name = framework.describe(target.model)
    say(f"initializing {name} abstractly (jax.eval_shape) to size its values")
    try:
        shapes = framework.shapes(target)
    except Exception:  # noqa: BLE001 - eval_shape is only a size estimate; the eager init says the rest
        return EAGER
    size = sum(int(np.prod(s.shape)) * getattr(s.dtype, "itemsize", 8) for s in shapes.values() if hasattr(s, "shape"))
    chosen = mode(size, budget, framework.record_abstract is not None)
    if chosen == BY_VALUE and framework.record_abstract is None:
        raise ValueError(
            f"memory={gigabytes(budget)}: {name}'s values take {gigabytes(size)}, and its in-memory "
            f"audit needs about {gigabytes(IN_MEMORY_FACTOR * size + BASE)}, and initcheck cannot record a "
            f"{framework.name} model abstractly (one value at a time): give a larger memory= or audit a smaller "
            "configuration of the model"
        )
    if chosen == BY_VALUE:
        say(
            f"{name}: its values take {gigabytes(size)}, more than an in-memory audit within memory="
            f"{gigabytes(budget)} can hold; recording its init abstractly (jax.eval_shape) and checking "
            "its values one at a time"
        )
    elif chosen == ONE_INIT:
        say(f"recording the init of {name} abstractly (jax.eval_shape; its values take {gigabytes(size)})")
    return chosen


def made_whole(p: Parameter) -> Parameter:
    """``p`` with its value from the one jitted init of the whole model (its declared values still lazy)."""
    if p.lazy is None or p.lazy.own is None or not isinstance(p.value, jax.ShapeDtypeStruct):
        return p
    try:
        return dataclasses.replace(p, value=p.lazy.own())
    except Exception as exc:  # noqa: BLE001 - the per-value path names what could not be made
        return dataclasses.replace(
            p, lazy=dataclasses.replace(p.lazy, own=None, own_refusal=f"{type(exc).__name__}: {exc}")
        )


def made_checked(p: Parameter, framework: Framework, budget: int | None, keys: bool, say) -> Parameter:
    """``p`` made whole when it fits ``budget`` (``made``; None: no limit), its key use
    checked against the model's own init from another root key; else still lazy (checked slice by
    slice)."""
    if budget is not None:
        say(f"making {p.path} ({gigabytes(p.nbytes)})")
    result = made(p, value_limit(budget) if budget is not None else 2**62)
    if result is None and budget is not None and SLICE_FACTOR * p.nbytes // p.slice_count + BASE > budget:
        say(
            f"warning: {p.path} is made {'slice by slice' if p.stacked else 'whole'} by its declared initializer, "
            f"whose sampler peaks at about {gigabytes(SLICE_FACTOR * p.nbytes // p.slice_count)}: more than "
            f"memory={gigabytes(budget)} leaves beside initcheck's own {gigabytes(BASE)}"
        )
    if result is None and p.lazy is not None and p.lazy.declared is None and not p.problem:
        return dataclasses.replace(
            p,
            lazy=None,
            unaudited=f"the model's own init of it ({gigabytes(p.nbytes)}) exceeds what the memory budget "
            f"({gigabytes(budget or 0)}) leaves for one value, and no declared initializer of it can make it slice "
            "by slice: not checked on the abstract path (memory budget); give a larger memory=",
        )
    if result is None:
        return p
    if (
        keys
        and p.lazy is not None
        and p.lazy.own is not None
        and result.underived == p.underived  # the model's own values were made (not the declared ones instead)
        and _key_use.is_random(result, None)
    ):
        count, shape = result.slice_count, tuple(result.slice_shape)
        own = _sampling.in_memory(result.value, tuple(result.stacked), count, shape)
        again = _sampling.in_memory(p.lazy.own(again=True), tuple(result.stacked), count, shape)
        same = [int(i) for i in np.flatnonzero(np.asarray(_sampling.equal_slices(own.view, again.view)))]
        if same:
            result = dataclasses.replace(
                result, key_use=_key_use.unchanged_reason(result, same, framework.ignored_key_cause())
            )
    return result
