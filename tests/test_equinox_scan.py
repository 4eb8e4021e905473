"""Equinox's scan-over-layers idiom: blocks built under ``eqx.filter_vmap`` (or ``jax.vmap``) from one
key per layer and run with ``jax.lax.scan``. Each stacked array is derived slice by slice (slice ``i``:
the layer's rule on the ``i``-th key), eagerly and on the memory budget's abstract path; blocks handed
one key fail ``derivation``, and a weight re-drawn inside the vmapped factory fails its intended law."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import initcheck
from initcheck import laws
from tests.corpus import Entry
from tests.test_budget import _abstract, abstract_path_matches, one_init_matches

STREAMED = "exceeds what the memory budget"  # a value made by slices: its derivation compares keys only


def _scan(stacked, x):
    """Run stacked layers one after the other (Equinox's scan-over-layers: arrays scanned, the rest static)."""
    dynamic, static = eqx.partition(stacked, eqx.is_array)

    def step(h, layer):
        return eqx.combine(layer, static)(h), None

    return jax.lax.scan(step, x, dynamic)[0]


class MLPBlocks(eqx.Module):
    """Residual MLP blocks made by ``eqx.filter_vmap`` over one key per block (``same_key``: the bug,
    the model's key stacked for every block)."""

    mlps: eqx.nn.MLP

    def __init__(self, depth: int = 3, width: int = 8, *, same_key: bool = False, key):
        make_mlp = lambda k: eqx.nn.MLP(width, width, 2 * width, 1, key=k)
        keys = jnp.stack([key] * depth) if same_key else jax.random.split(key, depth)
        self.mlps = eqx.filter_vmap(make_mlp)(keys)

    def __call__(self, x):
        return _scan(_Residual(self.mlps), x)


class _Residual(eqx.Module):
    layer: eqx.Module

    def __call__(self, x):
        return x + self.layer(x)


class AttentionBlock(eqx.Module):
    """A pre-norm self-attention block of four projections; it splits the key it is handed."""

    norm: eqx.nn.LayerNorm
    query: eqx.nn.Linear
    key_proj: eqx.nn.Linear
    value: eqx.nn.Linear
    output: eqx.nn.Linear

    def __init__(self, dim: int, *, key):
        qkey, kkey, vkey, okey = jax.random.split(key, 4)
        self.norm = eqx.nn.LayerNorm(dim)
        self.query = eqx.nn.Linear(dim, dim, key=qkey)
        self.key_proj = eqx.nn.Linear(dim, dim, key=kkey)
        self.value = eqx.nn.Linear(dim, dim, key=vkey)
        self.output = eqx.nn.Linear(dim, dim, use_bias=False, key=okey)

    def __call__(self, x):  # x: (sequence, dim)
        h = jax.vmap(self.norm)(x)
        q, k, v = jax.vmap(self.query)(h), jax.vmap(self.key_proj)(h), jax.vmap(self.value)(h)
        weights = jax.nn.softmax(q @ k.T / math.sqrt(q.shape[-1]), axis=-1)
        return x + jax.vmap(self.output)(weights @ v)


class Transformer(eqx.Module):
    """Attention blocks stacked by ``eqx.filter_vmap``; ``same_key``: every block handed the model's key
    (``jnp.stack([key] * depth)`` where ``split(key, depth)`` is meant)."""

    blocks: AttentionBlock

    def __init__(self, depth: int = 3, dim: int = 8, *, same_key: bool = False, key):
        keys = jnp.stack([key] * depth) if same_key else jax.random.split(key, depth)
        self.blocks = eqx.filter_vmap(lambda k: AttentionBlock(dim, key=k))(keys)

    def __call__(self, x):
        return _scan(self.blocks, x)


def closure_key_blocks(key, depth: int = 3, dim: int = 8):
    """The bug: ``jax.vmap`` over the layer index, every block built from the model's key itself."""
    return Stacked(jax.vmap(lambda _: AttentionBlock(dim, key=key))(jnp.arange(depth)))


class Stacked(eqx.Module):
    blocks: eqx.Module

    def __call__(self, x):
        return _scan(self.blocks, x)


class ConvStack(eqx.Module):
    """Same-padded 1-D convolutions stacked by ``jax.vmap`` of the layer constructor."""

    convs: eqx.nn.Conv1d

    def __init__(self, depth: int = 3, channels: int = 4, *, key):
        make = lambda k: eqx.nn.Conv1d(channels, channels, kernel_size=3, padding=1, key=k)
        self.convs = jax.vmap(make)(jax.random.split(key, depth))

    def __call__(self, x):  # x: (channels, length)
        return _scan(_Residual(self.convs), x)


class Experts(eqx.Module):
    """A mixture of experts per layer: ``eqx.filter_vmap`` over experts inside ``eqx.filter_vmap`` over layers."""

    experts: eqx.nn.Linear  # (layers, experts, dim, dim)

    def __init__(self, layers: int = 2, experts: int = 3, dim: int = 8, *, key):
        def layer(k):
            return eqx.filter_vmap(lambda e: eqx.nn.Linear(dim, dim, key=e))(jax.random.split(k, experts))

        self.experts = eqx.filter_vmap(layer)(jax.random.split(key, layers))

    def __call__(self, x):
        def step(h, experts):
            return jnp.mean(eqx.filter_vmap(lambda e: e(h))(experts), axis=0), None

        return jax.lax.scan(step, x, self.experts)[0]


def trunc_init(shape, key):
    """Equinox's FAQ initializer: 1/sqrt(fan_in) times a standard normal truncated to [-2, 2]."""
    return jax.random.truncated_normal(key, -2, 2, shape) / math.sqrt(shape[1])


class ReinitBlocks(eqx.Module):
    """Linear blocks whose weights the vmapped factory re-draws with ``eqx.tree_at``; ``wide``: the bug,
    twice the intended std."""

    linears: eqx.nn.Linear

    def __init__(self, depth: int = 3, dim: int = 32, *, wide: bool = False, key):
        def make(k):
            lkey, wkey = jax.random.split(k)
            linear = eqx.nn.Linear(dim, dim, key=lkey)
            weight = trunc_init((dim, dim), wkey) * (2.0 if wide else 1.0)
            return eqx.tree_at(lambda m: m.weight, linear, weight)

        self.linears = eqx.filter_vmap(make)(jax.random.split(key, depth))

    def __call__(self, x):
        return _scan(self.linears, x)


TRUNC = {"linears/weight": laws.TruncatedNormal(1 / math.sqrt(32), -2.0, 2.0)}


def _x(*shape):
    return jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float32)


ENTRIES = [
    Entry("mlp-blocks", lambda: (MLPBlocks, (), {"rng": 0, "call_args": (_x(8),)})),
    Entry("attention-blocks", lambda: (Transformer, (), {"rng": 0, "call_args": (_x(4, 8),)})),
    Entry("conv-stack", lambda: (ConvStack, (), {"rng": 0, "call_args": (_x(4, 10),)})),
    Entry("experts", lambda: (Experts, (), {"rng": 0, "call_args": (_x(8),)})),
]
SAME_KEY = Entry(
    "same-key-blocks",
    lambda: (lambda key: Transformer(same_key=True, key=key), (), {"rng": 0, "call_args": (_x(4, 8),)}),
)
SAME_KEY_MLP = Entry(
    "same-key-mlp-blocks",
    lambda: (lambda key: MLPBlocks(same_key=True, key=key), (), {"rng": 0, "call_args": (_x(8),)}),
)
CLOSURE_KEY = Entry("closure-key-blocks", lambda: (closure_key_blocks, (), {"rng": 0, "call_args": (_x(4, 8),)}))


def _audit(entry, **extra):
    model, inputs, options = entry.build()
    return initcheck.audit(model, *inputs, **options, **extra)


def _derivations(report) -> dict:
    return {v.case.path: v for v in report.verdicts if v.property == "derivation"}


@pytest.mark.parametrize("entry", ENTRIES, ids=str)
def test_stacked_blocks_are_derived_slice_by_slice(entry):
    report = _audit(entry)
    assert report.result == "pass", report.failure_text()
    derivations = _derivations(report)
    assert derivations and all(v.status == "pass" for v in derivations.values()), derivations
    assert all("each of its" in v.message and "slices equals" in v.message for v in derivations.values())


def test_nested_vmaps_stack_each_slice_at_both_axes():
    report = _audit(ENTRIES[3])
    message = _derivations(report)["experts/weight"].message
    assert (
        "each of its 6 slices" in message and "eqx.filter_vmap (3 slices), inside eqx.filter_vmap (2 slices)" in message
    )


@pytest.mark.parametrize("entry", [SAME_KEY, CLOSURE_KEY], ids=str)
def test_blocks_handed_one_key_fail_derivation(entry):
    failed = _derivations(_audit(entry))
    for path in ("blocks/query/weight", "blocks/key_proj/bias", "blocks/output/weight"):
        assert failed[path].status == "fail", failed[path]
        assert "slices 0 and 1 of 3 are identical" in failed[path].message, failed[path].message
    assert failed["blocks/norm/weight"].status == "pass"  # a constant needs no key


def test_a_weight_redrawn_inside_the_vmapped_factory_is_tested_against_its_intended_law_per_slice():
    correct = _audit(Entry("reinit", lambda: (ReinitBlocks, (), {"rng": 0, "expect": TRUNC, "call_args": (_x(32),)})))
    derivation = _derivations(correct)
    assert "no equinox.nn layer made it" in derivation["linears/weight"].message
    assert derivation["linears/bias"].status == "pass"
    assert not [v for v in correct.verdicts if v.status == "fail"], correct.failure_text()
    wide = _audit(
        Entry(
            "reinit-wide",
            lambda: (
                lambda key: ReinitBlocks(wide=True, key=key),
                (),
                {"rng": 0, "expect": TRUNC, "call_args": (_x(32),)},
            ),
        )
    )
    moments = [v for v in wide.failures if v.property == "moments" and v.case.path == "linears/weight"]
    assert moments and "scale is off" in moments[0].message, wide.failure_text()


def _followed(monkeypatch) -> list:
    """The reports ``initcheck.audit`` gives from now on, each required to derive every value (no
    ``derivation`` skipped, except the keys-only one of a value made by slices)."""
    reports, audit = [], initcheck.audit

    def audited(*args, **options):
        reports.append(audit(*args, **options))
        skipped = [v for v in _derivations(reports[-1]).values() if v.status == "skip" and STREAMED not in v.message]
        assert not skipped, skipped
        return reports[-1]

    monkeypatch.setattr(initcheck, "audit", audited)
    return reports


@pytest.mark.parametrize(
    "entry, whole",
    [(ENTRIES[2], True), (ENTRIES[2], False), (ENTRIES[3], True), (ENTRIES[3], False), (ENTRIES[1], False)],
    ids=["conv-stack-whole", "conv-stack-slices", "experts-whole", "experts-slices", "attention-blocks-slices"],
)
def test_the_abstract_path_gives_the_in_memory_verdicts(entry, whole, monkeypatch):
    reports = _followed(monkeypatch)
    abstract_path_matches(entry, whole, monkeypatch)
    assert len(reports) == 2


def test_one_jitted_build_gives_the_eager_verdicts(monkeypatch):
    reports = _followed(monkeypatch)
    one_init_matches(ENTRIES[2], monkeypatch)
    assert len(reports) == 2


@pytest.mark.parametrize(
    "entry, whole, paths",
    [
        (SAME_KEY_MLP, True, {"mlps/layers/0/weight", "mlps/layers/1/bias"}),
        (CLOSURE_KEY, False, {"blocks/query/weight", "blocks/value/bias", "blocks/output/weight"}),
    ],
    ids=["same-key-whole", "closure-key-slices"],
)
def test_blocks_handed_one_key_fail_on_the_abstract_path(entry, whole, paths, monkeypatch):
    _abstract(monkeypatch, whole=whole)
    lines: list[str] = []
    report = _audit(entry, memory="2GB", progress=lines.append)
    assert any("recording its init abstractly" in line for line in lines), lines
    failed = {path for path, v in _derivations(report).items() if v.status == "fail"}
    assert paths <= failed, failed
