"""The memory budget (``initcheck.audit(..., memory=)``): a model whose in-memory audit does not fit
is recorded abstractly and checked one value at a time. The test of that path is that it gives the
in-memory path's verdicts: here every linen corpus model is forced onto it (``IN_MEMORY_FACTOR``
raised so that nothing fits in memory), its values made whole (a generous per-value limit) or
slice by slice (a per-value limit of zero), and compared verdict for verdict with the in-memory
audit. Statistical verdicts use the ci profile with the corpus's fixed rngs, so both runs test
the same values (samples are drawn at positions derived from the seed and the path, not from the
route the values took), and the comparison is exact up to the ulp by which the model's own init,
compiled on this path, may differ from its eager run in memory.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import pytest

import initcheck
from initcheck import laws
from initcheck._audit import _budget
from tests.corpus import keras_models, linen_models
from tests.corpus import scale_models as sm

# what the abstract path cannot model, by design (docs/audit.md, "Memory budget")
ABSTRACT_LIMITS = ("abstract path (memory budget)",)
STREAMED = "exceeds what the memory budget"
TINY_GPT = sm.GPTConfig(vocab=512, width=64, depth=3, heads=4, context=16)
TINY_LLAMA = sm.LlamaConfig(vocab=512, width=64, depth=4, heads=4, kv_heads=2, hidden=160)


def _abstract(monkeypatch, *, whole: bool) -> None:
    monkeypatch.setattr(_budget, "IN_MEMORY_FACTOR", 10**12)  # no model fits in memory
    monkeypatch.setattr(_budget, "VALUE_FACTOR", 1 if whole else 10**12)  # each value made whole, or by slices


def _verdicts(report) -> dict:
    return {(v.case.path, v.property): v for v in report.verdicts}


def _same_verdicts(in_memory, abstract, *, streamed: bool) -> None:
    before, after = _verdicts(in_memory), _verdicts(abstract)
    assert set(before) == set(after)
    for key, v in before.items():
        w = after[key]
        if any(limit in w.message for limit in ABSTRACT_LIMITS):
            assert w.status == "skip", w.message
            continue
        if streamed and key[1] == "derivation" and STREAMED in w.message:
            assert v.status == "pass" and w.status == "skip", (v.message, w.message)
            continue
        assert (w.status, w.n) == (v.status, v.n), (key, v, w)
        # the model's own init runs compiled here, eagerly in memory: its values may differ by an ulp
        assert _close(w.statistic, v.statistic) and _close(w.pvalue, v.pvalue), (key, v, w)
        if key[1] != "derivation" and v.statistic is None:
            assert w.message == v.message, key


def corpus(entries, default: set[str]) -> list:
    """A framework corpus's entries: those in ``default`` in the default run, the rest under -m slow."""
    return [e if str(e) in default else pytest.param(e, marks=pytest.mark.slow, id=str(e)) for e in entries]


def abstract_path_matches(entry, whole: bool, monkeypatch, recorded=None) -> None:
    """``entry`` forced onto the abstract path (values made whole or by slices) gives the in-memory
    verdicts; ``recorded(lines)``: the progress says the path was taken (default: its own line)."""
    model, inputs, options = entry.build()
    in_memory = initcheck.audit(model, *inputs, **options)
    _abstract(monkeypatch, whole=whole)
    lines: list[str] = []
    abstract = initcheck.audit(model, *inputs, memory="2GB", progress=lines.append, **options)
    recorded = recorded or (lambda lines: any("recording its init abstractly" in line for line in lines))
    assert recorded(lines), lines
    _same_verdicts(in_memory, abstract, streamed=not whole)


def one_init_matches(entry, monkeypatch, recorded=None) -> None:
    """``entry`` made by one jitted init of the whole model gives the eager verdicts."""
    model, inputs, options = entry.build()
    eager = initcheck.audit(model, *inputs, **options)
    monkeypatch.setattr(_budget, "ONE_INIT_ABOVE", 0)
    lines: list[str] = []
    one_init = initcheck.audit(model, *inputs, progress=lines.append, **options)
    recorded = recorded or (lambda lines: any("one jitted init of the whole model" in line for line in lines))
    assert recorded(lines), lines
    _same_verdicts(eager, one_init, streamed=False)
    assert (one_init.signal is None) == (eager.signal is None)


def _close(a, b) -> bool:
    return (a is None and b is None) or (
        a is not None and b is not None and math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-12)
    )


# in the default run: the models whose kinds the abstract path treats apart (a scan of
# DenseGeneral kernels, nn.jit, a decode cache's integers, deterministic tables, batch statistics
# under scan); every linen corpus model under -m slow (an nn.vmap ensemble, batch axes, ...)
DEFAULT = {
    "linen-maxtext-decoder-scan",
    "linen-jit-blocks",
    "linen-lm1b-decode-cache",
    "linen-wmt-sinusoidal",
    "linen-scanned-batchnorm",
}
LINEN = [
    entry if str(entry) in DEFAULT else pytest.param(entry, marks=pytest.mark.slow, id=str(entry))
    for entry in linen_models.ENTRIES
]


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "slices"])
@pytest.mark.parametrize("entry", LINEN, ids=str)
def test_the_abstract_path_gives_the_in_memory_verdicts(entry, whole, monkeypatch):
    model, inputs, options = entry.build()
    in_memory = initcheck.audit(model, *inputs, **options)
    _abstract(monkeypatch, whole=whole)
    abstract = initcheck.audit(model, *inputs, memory="2GB", **options)
    _same_verdicts(in_memory, abstract, streamed=not whole)


@pytest.mark.parametrize("entry", LINEN, ids=str)
def test_one_jitted_init_gives_the_eager_verdicts(entry, monkeypatch):
    """A model above ``ONE_INIT_ABOVE`` that fits in memory is recorded abstractly and made by one
    jitted init of the whole model (from each root key): forced here on every linen corpus model."""
    model, inputs, options = entry.build()
    eager = initcheck.audit(model, *inputs, **options)
    monkeypatch.setattr(_budget, "ONE_INIT_ABOVE", 0)
    lines: list[str] = []
    one_init = initcheck.audit(model, *inputs, progress=lines.append, **options)
    assert any("one jitted init of the whole model" in line for line in lines)
    _same_verdicts(eager, one_init, streamed=False)
    assert (one_init.signal is None) == (eager.signal is None)


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "slices"])
def test_a_scanned_language_model_conforms_on_the_abstract_path(whole, monkeypatch):
    model, x = sm.GPT(TINY_GPT), sm.tokens()
    in_memory = initcheck.audit(model, x, rng=0)
    _abstract(monkeypatch, whole=whole)
    lines: list[str] = []
    abstract = initcheck.audit(model, x, rng=0, memory="2GB", progress=lines.append)
    assert abstract.result == in_memory.result == "pass"
    assert any("recording its init abstractly" in line for line in lines)
    _same_verdicts(in_memory, abstract, streamed=not whole)
    assert abstract.signal is None and "memory budget" in abstract.signal_unavailable


# the Llama shape (a small config of the 8B benchmark's classes) as each framework's code writes it:
# linen nn.scan, nnx.vmap with nnx.split_rngs run by nnx.scan, hk.layer_stack
LLAMA = {
    "linen": lambda c: (sm.Llama(c), (sm.tokens(),), {}),
    "nnx": lambda c: (sm.NnxLlama, (c,), {"call_args": (sm.tokens(),)}),
    "haiku": lambda c: (sm.haiku_llama(c), (sm.tokens(),), {}),
}
SCALED = laws.Normal(0.02 / math.sqrt(2 * TINY_LLAMA.depth))  # the residual projections' intended law
DOWN = {"**/w2/**": SCALED, "**/wo/**": SCALED}


def _llama(framework: str, bug: str = ""):
    return LLAMA[framework](sm.LlamaConfig(**{**TINY_LLAMA.__dict__, "bug": bug}))


def _layer(name: str, paths) -> bool:
    return any(f"layers/{name}/" in path for path in paths)


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "slices"])
@pytest.mark.parametrize("framework", LLAMA)
def test_layers_handed_one_key_fail_on_the_abstract_path(framework, whole, monkeypatch):
    _abstract(monkeypatch, whole=whole)
    model, inputs, options = _llama(framework, "shared_layer_keys")
    report = initcheck.audit(model, *inputs, rng=0, memory="2GB", **options)
    failed = {v.case.path for v in report.failures if v.property == "derivation"}
    assert _layer("w1", failed) and _layer("wq", failed), report.failure_text()
    assert report.result == "fail"


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "slices"])
@pytest.mark.parametrize("framework", LLAMA)
def test_down_projections_without_their_depth_scale_fail_on_the_abstract_path(framework, whole, monkeypatch):
    _abstract(monkeypatch, whole=whole)
    model, inputs, options = _llama(framework, "unscaled_down")
    report = initcheck.audit(model, *inputs, rng=0, memory="2GB", expect=DOWN, **options)
    intent = {v.case.path for v in report.failures if v.property == "intent"}
    moments = {v.case.path for v in report.failures if v.property == "moments"}
    assert _layer("w2", intent) and _layer("wo", intent) and _layer("w2", moments), report.failure_text()
    model, inputs, options = _llama(framework)
    correct = initcheck.audit(model, *inputs, rng=0, memory="2GB", expect=DOWN, **options)
    assert correct.result == "pass", correct.failure_text()


def test_a_framework_without_an_abstract_path_is_a_clear_error(monkeypatch):
    entry = keras_models.ENTRIES[0]
    model, inputs, options = entry.build()
    monkeypatch.setattr(_budget, "IN_MEMORY_FACTOR", 10**12)
    with pytest.raises(ValueError, match=r"memory=2\.00 GB: .* cannot record a keras model abstractly"):
        initcheck.audit(model, *inputs, memory="2GB", **options)


@pytest.mark.parametrize(
    ("memory", "error", "words"),
    [
        ("lots", TypeError, "memory='lots' must be bytes"),
        ("6 parsecs", ValueError, "unknown unit 'parsecs'"),
        ("100MB", ValueError, "below the 1.5 GB"),
        (True, TypeError, "memory=True must be bytes"),
    ],
)
def test_a_bad_memory_budget_names_the_argument_and_the_fix(memory, error, words):
    with pytest.raises(error, match=words):
        initcheck.audit(sm.GPT(TINY_GPT), sm.tokens(), memory=memory)


def test_memory_reads_binary_units():
    assert _budget.parse("6GB") == 6 * 2**30
    assert _budget.parse("1536 MiB") == 1536 * 2**20
    assert _budget.parse(2 * 2**30) == 2 * 2**30
    assert _budget.parse(None) > 0


def test_a_large_value_is_tested_on_a_sample_and_its_exact_defects_over_every_value():
    def zeroed(key, shape, dtype=jnp.float32):
        import jax

        return (jax.random.normal(key, shape, dtype) * 0.02).reshape(-1).at[:200].set(0.0).reshape(shape)

    import flax.linen as nn

    class Table(nn.Module):
        @nn.compact
        def __call__(self, x):
            return self.param("table", initcheck.expects(laws.Normal(0.02))(zeroed), (2048, 1024))

    report = initcheck.audit(Table(), jnp.ones(()), rng=0, properties=["distribution", "moments"])
    verdicts = {v.property: v for v in report.verdicts}
    assert verdicts["distribution"].status == "fail"
    assert "exact zeros among all 2097152 values: 200 observed" in verdicts["distribution"].message
    assert verdicts["moments"].status == "pass" and verdicts["moments"].n == 2**18
    assert "tested on 262144 of its 2097152 values at positions derived from the seed" in verdicts["moments"].message


def test_the_command_line_takes_a_memory_budget(tmp_path):
    import subprocess
    import sys

    (tmp_path / "big_models.py").write_text(sm.BIG_TABLE_MODULE)
    command = [sys.executable, "-m", "initcheck.cli", "audit", "big_models:table", "--profile", "quick"]
    run = lambda *extra: subprocess.run([*command, *extra], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    refused = run("--memory", "6 parsecs")
    assert refused.returncode == 2 and "memory='6 parsecs': unknown unit 'parsecs'" in refused.stderr
    done = run("--memory", "2GB")  # a 164 MB table: over what 2 GB leaves for one value, made by slices
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "recording its init abstractly" in done.stderr and "making Embed_0/embedding (0.15 GB)" in done.stderr
    assert "does not fit the memory budget (2.00 GB)" in done.stdout  # the signal profile's named skip
