"""initcheck.inits against torch.nn.init (optional: skipped when PyTorch is not installed).

Random initializers: a two-sample KS test (scipy.stats.ks_2samp) between 2^16 of our values and
2^16 of PyTorch's for the same shape in PyTorch's (out, in, *kernel) layout, at alpha = 1e-6 per
test, so about 1e-5 for the file. PyTorch is seeded with a fixed seed and our keys are fixed, so
the verdicts are the same on every run. Deterministic ones (dirac, eye) must match exactly.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from initcheck import inits

torch = pytest.importorskip("torch")

ALPHA = 1e-6
N = 2**16
SHAPE = (32, 16, 3, 3)  # (out, in, kh, kw): fan_in = 144, fan_out = 288
TORCH_LAYOUT = {"in_axis": 1, "out_axis": 0}


def _ours(init, shape=SHAPE) -> np.ndarray:
    size = math.prod(shape)
    keys = jax.random.split(jax.random.PRNGKey(20261122), -(-N // size))
    return np.concatenate([np.asarray(init(k, shape, jnp.float32)).ravel() for k in keys])[:N]


def _theirs(fill, shape=SHAPE) -> np.ndarray:
    torch.manual_seed(20261122)
    size = math.prod(shape)
    out = []
    for _ in range(-(-N // size)):
        t = torch.empty(shape)
        fill(t)
        out.append(t.detach().numpy().ravel())
    return np.concatenate(out)[:N]


def _module_param(make, attr):
    def fill(t):
        t.copy_(getattr(make(), attr).detach().reshape(t.shape))

    return fill


CASES = {
    "kaiming_uniform": (inits.kaiming_uniform(**TORCH_LAYOUT), lambda t: torch.nn.init.kaiming_uniform_(t)),
    "kaiming_uniform_relu_fan_out": (
        inits.kaiming_uniform(0.0, "fan_out", "relu", **TORCH_LAYOUT),
        lambda t: torch.nn.init.kaiming_uniform_(t, 0.0, "fan_out", "relu"),
    ),
    "kaiming_normal_leaky": (
        inits.kaiming_normal(0.2, **TORCH_LAYOUT),
        lambda t: torch.nn.init.kaiming_normal_(t, 0.2),
    ),
    "xavier_uniform_tanh": (
        inits.xavier_uniform(5 / 3, **TORCH_LAYOUT),
        lambda t: torch.nn.init.xavier_uniform_(t, gain=5 / 3),
    ),
    "xavier_normal": (inits.xavier_normal(**TORCH_LAYOUT), lambda t: torch.nn.init.xavier_normal_(t)),
    "trunc_normal": (
        inits.trunc_normal(0.5, 2.0, -1.0, 4.0),
        lambda t: torch.nn.init.trunc_normal_(t, 0.5, 2.0, -1.0, 4.0),
    ),
    "conv2d_weight": (
        inits.torch_default_weight(**TORCH_LAYOUT),
        _module_param(lambda: torch.nn.Conv2d(16, 32, 3), "weight"),
    ),
    "conv2d_bias": (inits.torch_default_bias(16 * 9), _module_param(lambda: torch.nn.Conv2d(16, 32, 3), "bias")),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_same_law_as_pytorch(name):
    ours_init, fill = CASES[name]
    shape = (32,) if name.endswith("bias") else SHAPE
    result = stats.ks_2samp(_ours(ours_init, shape), _theirs(fill, shape))
    assert result.pvalue >= ALPHA, f"{name}: KS D={result.statistic:.4g}, p={result.pvalue:.3g}"


def test_linear_defaults_match():
    linear_weight = _theirs(_module_param(lambda: torch.nn.Linear(100, 40), "weight"), (40, 100))
    linear_bias = _theirs(_module_param(lambda: torch.nn.Linear(100, 40), "bias"), (40,))
    ours_weight = _ours(inits.torch_default_weight(), (100, 40))  # JAX layout (in, out)
    ours_bias = _ours(inits.torch_default_bias(100), (40,))
    assert stats.ks_2samp(ours_weight, linear_weight).pvalue >= ALPHA
    assert stats.ks_2samp(ours_bias, linear_bias).pvalue >= ALPHA


def test_sparse_matches_in_law_and_zero_count():
    shape = (64, 64)  # 16 whole draws of 4096 values, 20 zeros per column in each
    theirs = _theirs(lambda t: torch.nn.init.sparse_(t, 0.3, 0.5), shape)
    ours = _ours(inits.sparse(0.3, 0.5), shape)
    assert np.count_nonzero(theirs == 0) == np.count_nonzero(ours == 0) == 16 * 64 * 20
    assert stats.ks_2samp(ours[ours != 0], theirs[theirs != 0]).pvalue >= ALPHA


@pytest.mark.parametrize("groups, shape", [(1, (8, 4, 3, 3)), (2, (8, 4, 3, 5)), (1, (4, 8, 5)), (2, (6, 3, 3, 3, 3))])
def test_dirac_matches_exactly(groups, shape):
    t = torch.empty(shape)
    torch.nn.init.dirac_(t, groups)
    ours = inits.dirac(groups)(jax.random.PRNGKey(0), shape[2:] + (shape[1], shape[0]))  # (spatial..., in, out)
    assert np.array_equal(np.moveaxis(np.asarray(ours), (-1, -2), (0, 1)), t.numpy())


def test_eye_matches_exactly():
    t = torch.empty(5, 7)
    torch.nn.init.eye_(t)
    assert np.array_equal(np.asarray(inits.eye()(jax.random.PRNGKey(0), (5, 7))), t.numpy())
