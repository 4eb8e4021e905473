"""``pytest --initcheck`` on two downstream projects, without xdist and with ``-n 2``.

    python benchmarks/plugin_xdist.py [--profile ci] [--repeat 1]

One project declares 4 models (a linen ViT-like encoder, an nnx transformer block, a Haiku MLP, a
linen ResNet-like CNN), the other 8 initializers. Prints each project's wall time per mode: a
target's items run on one xdist worker, which checks the target once, so ``-n 2`` should be the
faster of the two.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys
import tempfile
import time

MODELS = """
import jax, jax.numpy as jnp, flax.linen as nn, haiku as hk
from flax import nnx


class Block(nn.Module):
    @nn.compact
    def __call__(self, x, _):
        y = nn.MultiHeadDotProductAttention(num_heads=4, kernel_init=nn.initializers.xavier_uniform())(
            nn.LayerNorm()(x), nn.LayerNorm()(x))
        x = x + y
        return x + nn.Dense(64)(nn.gelu(nn.Dense(128)(nn.LayerNorm()(x)))), None


class Encoder(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.scan(Block, variable_axes={"params": 0}, split_rngs={"params": True}, length=4)()(x, None)[0]


def vit():
    return Encoder(), jnp.ones((2, 16, 64))


class TransformerBlock(nnx.Module):
    def __init__(self, rngs):
        self.attention = nnx.MultiHeadAttention(num_heads=4, in_features=64, decode=False, rngs=rngs)
        self.up = nnx.Linear(64, 256, rngs=rngs)
        self.down = nnx.Linear(256, 64, rngs=rngs)
        self.norm = nnx.LayerNorm(64, rngs=rngs)


def block():
    return TransformerBlock


def mlp():
    return hk.transform(lambda x: hk.nets.MLP([256, 256, 10])(x)), jnp.ones((1, 128))


class CNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        for features in (16, 32, 64):
            x = nn.relu(nn.BatchNorm(use_running_average=False)(nn.Conv(features, (3, 3), use_bias=False)(x)))
        return nn.Dense(10)(x.mean(axis=(1, 2)))


def cnn():
    return CNN(), jnp.ones((2, 32, 32, 3))
"""

INITS = """
import jax, jax.numpy as jnp
import initcheck
from initcheck import laws


def _normal(std):
    return lambda key, shape, dtype=jnp.float32: std * jax.random.normal(key, shape, dtype)


embed = initcheck.expects(laws.Normal(0.02))(_normal(0.02))
head = initcheck.expects(laws.Normal(0.01))(_normal(0.01))
kernel = initcheck.expects(laws.VarianceScaling(1.0, "fan_in", "truncated_normal"))(jax.nn.initializers.lecun_normal())
glorot = initcheck.expects(laws.VarianceScaling(1.0, "fan_avg", "uniform"))(jax.nn.initializers.glorot_uniform())
he = initcheck.expects(laws.VarianceScaling(2.0, "fan_in", "normal"))(jax.nn.initializers.he_normal())
small = initcheck.expects(laws.Uniform(-0.05, 0.05))(
    lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -0.05, 0.05))
trunc = initcheck.expects(laws.TruncatedNormal(0.02))(jax.nn.initializers.truncated_normal(0.02))
ortho = initcheck.expects(laws.Orthogonal(1.0))(jax.nn.initializers.orthogonal())
"""


def project(folder: pathlib.Path, kind: str, profile: str) -> pathlib.Path:
    root = folder / kind
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    if kind == "models":
        (root / "pkg" / "models.py").write_text(MODELS)
        table = 'models = ["pkg.models:vit", "pkg.models:block", "pkg.models:mlp", "pkg.models:cnn"]'
    else:
        (root / "pkg" / "inits.py").write_text(INITS)
        table = 'modules = ["pkg.inits"]'
    (root / "pyproject.toml").write_text(
        f'[tool.pytest.ini_options]\npythonpath = ["."]\n\n[tool.initcheck]\n{table}\nprofile = "{profile}"\n'
    )
    (root / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    return root


def wall(root: pathlib.Path, *args: str) -> float:
    """One session's wall time, with an empty compile cache of its own (no run loads what another compiled)."""
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--initcheck",
                f"--initcheck-compile-cache={cache}",
                *args,
            ],
            cwd=root,
            check=False,
            capture_output=True,
        )
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="ci")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for kind in ("models", "inits"):
            root = project(pathlib.Path(folder), kind, args.profile)
            serial = min(wall(root, "-p", "no:xdist") for _ in range(args.repeat))
            parallel = min(wall(root, "-n", "2") for _ in range(args.repeat))
            label = "4 models" if kind == "models" else "8 initializers"
            print(
                f"{label:15s} profile={args.profile}: without xdist {serial:6.1f} s, -n 2 {parallel:6.1f} s "
                f"({serial / parallel:.2f}x)",
                flush=True,
            )


if __name__ == "__main__":
    main()
