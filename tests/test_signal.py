"""The signal profile of an audited model: second moments forward and backward, layer by layer.

Deterministic: the model's rng, the unit-variance inputs and the loss's weights come from fixed keys,
so each number is the same on every run. The tolerances below cover how far one such draw (width
256, batch 128) can sit from the infinite-width theory; they are set from the theory, not from the
numbers seen (the measured values are 10-30% off it per layer and compound to about 2x over 20)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import flax.linen as nn
import haiku as hk
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import initcheck

DEPTH, WIDTH = 20, 256


class ReluMLP(nn.Module):
    """A deep ReLU MLP without biases."""

    kernel_init: object

    @nn.compact
    def __call__(self, x):
        for _ in range(DEPTH):
            x = nn.relu(nn.Dense(WIDTH, use_bias=False, kernel_init=self.kernel_init)(x))
        return x


def _profile(kernel_init):
    report = initcheck.audit(
        ReluMLP(kernel_init), jnp.ones((128, WIDTH)), rng=0, properties=["effective_fan", "signal"]
    )
    assert report.passed, report.failure_text()
    return report.signal


def test_lecun_normal_halves_the_forward_signal_at_every_relu_layer():
    signal = _profile(nn.initializers.lecun_normal())
    forward = np.array([layer.forward for layer in signal.layers])
    assert [layer.name for layer in signal.layers] == [f"Dense_{i}" for i in range(DEPTH)]
    assert signal.inputs == pytest.approx(1.0, rel=0.05)  # the inputs were replaced by unit-variance draws
    ratios = forward[1:] / forward[:-1]
    assert np.all((ratios > 0.35) & (ratios < 0.7)), ratios  # each layer: x E[relu(z)^2]/E[z^2] = 1/2
    assert math.exp(np.mean(np.log(ratios))) == pytest.approx(0.5, rel=0.08)
    # the output after the last ReLU: about 2^-20 (a factor 4 either side)
    assert 2.0**-22 < signal.outputs < 2.0**-18
    # backward: the gradient halves at every layer too, towards the input
    gradient = np.array([layer.gradient for layer in signal.layers])
    assert np.all(np.diff(np.log2(gradient)) > 0)
    assert 2.0**-22 < gradient[0] / gradient[-1] < 2.0**-16


def test_he_normal_keeps_the_forward_signal_within_a_small_factor():
    signal = _profile(nn.initializers.he_normal())
    forward = np.array([layer.forward for layer in signal.layers])
    assert np.all((forward > 2.0 / 4) & (forward < 2.0 * 4)), forward  # E[z^2] = 2 E[x^2] at every layer
    gradient = np.array([layer.gradient for layer in signal.layers])
    assert gradient.max() / gradient.min() < 4, gradient


class Block(nn.Module):
    @nn.compact
    def __call__(self, x, _):
        return nn.relu(nn.Dense(64, kernel_init=nn.initializers.he_normal())(x)), None


class Stack(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.scan(Block, variable_axes={"params": 0}, split_rngs={"params": True}, length=4)()(x, None)[0]


def test_a_scan_over_layers_is_unrolled_one_layer_per_step():
    report = initcheck.audit(Stack(), jnp.ones((8, 64)), rng=0, properties=["signal"])
    assert report.verdicts == []
    names = [layer.name for layer in report.signal.layers]
    assert names == [f"ScanBlock_0/Dense_0 [{i}]" for i in range(4)]
    assert {layer.parameter for layer in report.signal.layers} == {"ScanBlock_0/Dense_0/kernel"}
    assert all(layer.shape == (8, 64) for layer in report.signal.layers)


def test_every_framework_gets_a_profile():
    haiku = initcheck.audit(
        hk.transform(lambda x: hk.nets.MLP([32, 32, 8])(x)), jnp.ones((4, 16)), rng=0, properties=["signal"]
    )
    assert [layer.name for layer in haiku.signal.layers] == [f"mlp/~/linear_{i}" for i in range(3)]
    nnx_report = initcheck.audit(nnx.Linear, 16, 8, rng=0, call_args=(jnp.ones((4, 16)),), properties=["signal"])
    (layer,) = nnx_report.signal.layers
    assert layer.name == "(model)" and layer.parameter == "kernel" and layer.input == pytest.approx(1.0, rel=0.3)
    missing = initcheck.audit(nnx.Linear, 16, 8, rng=0, properties=["signal"])
    assert missing.signal is None and "call_args" in missing.signal_unavailable
    assert "signal at init: not profiled" in str(missing)


def test_the_profile_is_in_the_text_and_json_reports():
    report = initcheck.audit(Stack(), jnp.ones((8, 64)), rng=0)
    text = str(report)
    assert "signal at init" in text and "ScanBlock_0/Dense_0 [3]" in text
    data = json.loads(json.dumps(report.to_dict()))
    layers = data["signal"]["layers"]
    assert len(layers) == 4 and set(layers[0]) == {"name", "parameter", "op", "shape", "input", "forward", "gradient"}


FACTORY = """
import flax.linen as nn
import jax.numpy as jnp


class ReluMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        for _ in range(12):
            x = nn.relu(nn.Dense(64, use_bias=False)(x))  # lecun_normal: the signal halves per layer
        return x


def deep_mlp():
    return ReluMLP(), jnp.ones((32, 64))
"""


def test_the_html_report_of_an_audited_model_plots_its_signal(tmp_path, open_report):
    (tmp_path / "deep_models.py").write_text(FACTORY)
    done = subprocess.run(
        [sys.executable, "-m", "initcheck.cli", "audit", "deep_models:deep_mlp", "--profile", "quick",
         "--json", "r.json", "--html", "r.html"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "signal at init" in done.stdout and "Dense_11" in done.stdout
    signal = json.loads((tmp_path / "r.json").read_text())["targets"][0]["signal"]
    assert [layer["name"] for layer in signal["layers"]] == [f"Dense_{i}" for i in range(12)]
    page = open_report(tmp_path / "r.html")
    assert page.errors == [] and page.requests == []
    section = page.locator("section.signal")
    assert section.count() == 1 and section.get_attribute("data-target") == "deep_models:deep_mlp"
    plot = section.locator("figure.signal-plot svg")
    assert plot.is_visible() and plot.bounding_box()["width"] > 400
    svg = plot.inner_html()
    assert "log scale" in svg and "forward: E[y^2]" in svg and "backward: E[g^2]" in svg
    rows = section.locator("table.signal-table tbody tr")
    assert rows.count() == 12
    shown = [float(rows.nth(i).locator("td").nth(6).inner_text()) for i in range(12)]
    assert shown == pytest.approx([layer["forward"] for layer in signal["layers"]], rel=1e-2)
    assert shown[-1] / shown[0] < 2.0**-8  # eleven halvings, as the plot shows
