"""The memory budget's abstract path for Equinox: every Equinox corpus model forced onto it (as
``tests/test_budget.py`` does for linen) gives the in-memory verdicts, values made whole or slice by
slice, and its one-jitted-build path gives the eager verdicts; the corpus's bugs (two layers
handed one key, a layer seeded with a fixed key) are caught on it."""

from __future__ import annotations

import equinox as eqx
import jax
import pytest

import initcheck
from tests.corpus import equinox_models
from tests.test_budget import _abstract, abstract_path_matches, corpus, one_init_matches

DEFAULT = {"equinox-mnist-cnn", "equinox-resnet-batchnorm", "equinox-mlp-scan", "equinox-shared-key"}
ENTRIES = corpus(equinox_models.ENTRIES, DEFAULT)


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "slices"])
@pytest.mark.parametrize("entry", ENTRIES, ids=str)
def test_the_abstract_path_gives_the_in_memory_verdicts(entry, whole, monkeypatch):
    abstract_path_matches(entry, whole, monkeypatch)


@pytest.mark.parametrize("entry", ENTRIES, ids=str)
def test_one_jitted_build_gives_the_eager_verdicts(entry, monkeypatch):
    one_init_matches(entry, monkeypatch)


class Stack(eqx.Module):
    """A stack of MLP blocks whose keys come from one split, as Equinox's examples build them;
    ``shared``: every block built from the same key (the bug of Equinox's ViT example)."""

    blocks: list

    def __init__(self, depth: int = 4, width: int = 16, *, shared: bool = False, key):
        keys = [key] * depth if shared else list(jax.random.split(key, depth))
        self.blocks = [eqx.nn.MLP(width, width, 2 * width, 1, key=k) for k in keys]

    def __call__(self, x):
        for block in self.blocks:
            x = x + block(x)
        return x


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "slices"])
def test_blocks_built_from_one_key_fail_on_the_abstract_path(whole, monkeypatch):
    _abstract(monkeypatch, whole=whole)
    report = initcheck.audit(
        lambda key: Stack(shared=True, key=key), memory="2GB", rng=0, call_args=(jax.numpy.ones(16),)
    )
    failed = {v.case.path for v in report.failures if v.property == "derivation"}
    assert {"blocks/0/layers/0/weight", "blocks/3/layers/1/bias"} <= failed, report.failure_text()
    correct = initcheck.audit(lambda key: Stack(key=key), memory="2GB", rng=0, call_args=(jax.numpy.ones(16),))
    assert correct.result == "pass", correct.failure_text()
