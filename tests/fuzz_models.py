"""A model fuzzer for ``initcheck.audit``: correct models of Flax linen, Flax nnx, Haiku, Equinox
and Keras 3 (JAX backend), drawn from a seed.

A seed decides everything: ``FRAMEWORKS[seed % 5]`` is the framework and ``random.Random(seed)``
draws a *spec* (plain data: the stages of the model, their layers, each layer's initializers, the
parameter dtype, the widths). ``build(spec)`` turns a spec into ``(model, inputs, audit kwargs)``
and ``judge(report, spec)`` lists what would be a false alarm in the audit's report. The models are
written as people write them (nested submodules, ``nn.scan`` over remat'd blocks, nnx layers made
with ``nnx.split_rngs`` + ``nnx.vmap`` and run with ``nnx.scan``, ``hk.layer_stack``, Equinox
``Sequential`` and ``MLP``, Keras functional models with residual blocks) and kept tiny (widths of
at most 32, at most 3 layers per stack) so that an audit takes about a second.

Run ``python -m tests.fuzz_models SEED [SEED ...]`` to rebuild the model of each seed, audit it and
print its spec, report and judgement; ``python -m tests.fuzz_models --range START STOP`` audits
every seed in ``range(START, STOP)`` and prints one line per seed."""

from __future__ import annotations

import collections
import json
import math
import os
import random
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

FRAMEWORKS = ("linen", "nnx", "haiku", "equinox", "keras")
AUDIT_RNG = 0  # the audit's root key is fixed: Hypothesis never searches keys for a p-value
DROPOUT_RNG = 1

MODES = ("fan_in", "fan_out", "fan_avg")
DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")
NAMED = ("lecun_normal", "lecun_uniform", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform")
LOW_PRECISION = ("bfloat16", "float16")
WITH_PARAMS = ("dense", "dense_general", "conv", "mlp", "attention", "layernorm", "rmsnorm", "batchnorm")

# Coverage gaps that are documented limitations (docs/audit.md): arrays made by user code in an
# Equinox model (here: a re-initialization with ``eqx.tree_at``, the documented way to use another
# initializer) have no derivable key; their law is given with ``expect=``.
DOCUMENTED_GAPS = {"no equinox.nn layer made it"}

# the known defect of each framework's own 16-bit samplers (docs/catalog.md)
KNOWN_DEFECTS = {
    "linen": "jax-low-precision-sampling",
    "nnx": "jax-low-precision-sampling",
    "haiku": "haiku-low-precision-sampling",
    "equinox": "equinox-low-precision-sampling",
    "keras": "keras-low-precision-sampling",
}


# --- drawing specs -----------------------------------------------------------------------------------


def framework_of(seed: int) -> str:
    return FRAMEWORKS[seed % len(FRAMEWORKS)]


def draw_spec(seed: int) -> dict:
    """The spec of seed ``seed``: plain data (JSON-able), the same on every run."""
    framework = framework_of(seed)
    r = random.Random(seed)
    spec = {"seed": seed, "framework": framework}
    spec.update(DRAWERS[framework](r))
    return spec


def _width(r: random.Random) -> int:
    return r.choice((4, 8, 12, 16, 24, 32))


def draw_kernel_init(r: random.Random, low_precision: bool, orthogonal: bool = True) -> list:
    """An initializer of a kernel (2-D or more) from every family, as plain data."""
    families = [
        *NAMED,
        "variance_scaling",
        "normal",
        "uniform",
        "truncated_normal",
        "zeros",
        "ones",
        "constant",
        "default",
    ]
    if orthogonal and not low_precision:  # QR in a 16-bit dtype is no initializer anyone uses
        families.append("orthogonal")
    family = r.choice(families)
    if family == "variance_scaling":
        return [family, r.choice((0.1, 0.5, 1.0, 2.0)), r.choice(MODES), r.choice(DISTRIBUTIONS)]
    if family in ("normal", "truncated_normal"):
        return [family, r.choice((0.01, 0.02, 0.05, 0.1, 1.0))]
    if family == "uniform":
        return [family, r.choice((0.01, 0.05, 0.1, 1.0))]
    if family == "orthogonal":
        return [family, r.choice((1.0, math.sqrt(2.0), 0.5))]
    if family == "constant":
        return [family, r.choice((0.1, -0.5, 0.02, 2.0))]
    return [family]


def draw_bias_init(r: random.Random) -> list:
    family = r.choice(("zeros", "zeros", "ones", "constant", "normal", "uniform", "truncated_normal", "default"))
    if family == "constant":
        return [family, r.choice((0.1, -0.5, 0.01))]
    if family in ("normal", "truncated_normal"):
        return [family, r.choice((1e-6, 0.01, 0.1))]
    if family == "uniform":
        return [family, r.choice((0.01, 0.1))]
    return [family]


def draw_scale_init(r: random.Random) -> list:
    family = r.choice(("ones", "ones", "default", "constant", "zeros"))
    return [family, r.choice((0.5, 2.0))] if family == "constant" else [family]


def _dtype(r: random.Random, low_share: float = 0.2) -> str:
    return r.choice(LOW_PRECISION) if r.random() < low_share else "float32"


def _draw_layer(r: random.Random, kinds: tuple, width: int, low: bool, out_width: int | None = None) -> dict:
    """One layer that maps ``width`` features to ``out_width`` (or any width when None, for the layers
    that keep the width only when asked)."""
    kind = r.choice(kinds)
    out = out_width if out_width is not None else _width(r)
    layer: dict = {"kind": kind}
    if kind in ("dense", "dense_general", "conv", "mlp"):
        layer.update(
            kernel_init=draw_kernel_init(r, low),
            bias_init=draw_bias_init(r),
            use_bias=r.random() < 0.8,
            features=out,
        )
        if kind == "dense_general":
            heads = r.choice([h for h in (1, 2, 4) if out % h == 0])
            layer.update(heads=heads, features=out)
        if kind == "conv":
            layer["kernel_size"] = r.choice((1, 2, 3))
        if kind == "mlp":
            layer.update(hidden=_width(r), depth=r.choice((1, 2)))
    elif kind == "attention":
        heads = r.choice([h for h in (1, 2, 4) if width % h == 0])
        layer.update(
            heads=heads,
            head_dim=r.choice((2, 4, 8)),
            kernel_init=draw_kernel_init(r, low),
            out_kernel_init=draw_kernel_init(r, low) if r.random() < 0.3 else None,
            bias_init=draw_bias_init(r),
            use_bias=r.random() < 0.8,
            features=width,
        )
    elif kind in ("layernorm", "rmsnorm", "batchnorm"):
        layer.update(scale_init=draw_scale_init(r), bias_init=draw_bias_init(r), features=width)
    elif kind == "dropout":
        layer.update(rate=r.choice((0.1, 0.25, 0.5)), features=width)
    else:  # an activation
        layer.update(kind="act", fn=r.choice(("relu", "gelu", "tanh", "silu")), features=width)
    return layer


def _draw_block(r: random.Random, kinds: tuple, width: int, low: bool) -> list:
    """Layers mapping ``width`` to ``width`` (a residual block, a scanned or stacked body): one or two of
    them, the last one back to ``width``."""
    layers, w = [], width
    for i in range(r.randint(1, 2)):
        last = i == 1 or r.random() < 0.5
        layer = _draw_layer(r, kinds, w, low, out_width=width if last else None)
        layers.append(layer)
        w = layer["features"]
        if last:
            break
    if w != width or not any(layer["kind"] in WITH_PARAMS for layer in layers):
        # back to the width, and a block with no parameters is no block to stack
        layers.append(_draw_layer(r, ("dense",), w, low, out_width=width))
    return layers


def _draw_stages(r: random.Random, kinds: tuple, wrappers: tuple, width: int, low: bool) -> list:
    stages = []
    for _ in range(r.randint(1, 2)):
        wrapper = r.choice(wrappers)
        stage = {"wrapper": wrapper, "layers": _draw_block(r, kinds, width, low)}
        if wrapper not in ("plain", "nested", "sequential", "remat", "transparent", "residual"):
            stage["length"] = r.randint(1, 3)
        stages.append(stage)
    return stages


def _draw_common(r: random.Random, kinds: tuple, wrappers: tuple, low_share: float = 0.2) -> dict:
    dtype = _dtype(r, low_share)
    low = dtype != "float32"
    width = _width(r)
    spec = {"dtype": dtype, "width": width, "batch": r.choice((2, 3, 4)), "length": r.choice((3, 4, 5))}
    spec["embed"] = {"vocab": r.choice((16, 32, 50)), "init": _draw_embed_init(r, low)} if r.random() < 0.25 else None
    spec["stages"] = _draw_stages(r, kinds, wrappers, width, low)
    spec["head"] = _draw_layer(r, ("dense",), width, low, out_width=r.choice((1, 2, 4, 10)))
    return spec


def _draw_embed_init(r: random.Random, low: bool) -> list:
    family = r.choice(("default", "normal", "truncated_normal", "uniform", "variance_scaling"))
    if family in ("normal", "truncated_normal"):
        return [family, r.choice((0.02, 0.1, 1.0))]
    if family == "uniform":
        return [family, r.choice((0.05, 1.0))]
    if family == "variance_scaling":
        return [family, 1.0, "fan_in", r.choice(DISTRIBUTIONS)]
    return [family]


LINEN_KINDS = ("dense", "dense", "dense_general", "attention", "conv", "layernorm", "batchnorm", "dropout", "act")
LINEN_WRAPPERS = ("plain", "nested", "sequential", "remat", "scan", "remat_scan", "vmap", "scan_vmap")
NNX_KINDS = (
    "dense",
    "dense",
    "dense_general",
    "attention",
    "conv",
    "layernorm",
    "rmsnorm",
    "batchnorm",
    "dropout",
    "act",
)
NNX_WRAPPERS = ("plain", "nested", "sequential", "scan", "vmap")
HAIKU_KINDS = ("dense", "dense", "attention", "conv", "mlp", "layernorm", "batchnorm", "dropout", "act")
HAIKU_WRAPPERS = ("plain", "nested", "transparent", "sequential", "remat", "layer_stack", "nested_stack")
EQX_KINDS = ("dense", "dense", "attention", "conv", "mlp", "layernorm", "rmsnorm", "batchnorm", "act")
EQX_WRAPPERS = ("plain", "nested", "sequential", "residual", "list")
KERAS_KINDS = ("dense", "dense", "attention", "conv", "layernorm", "batchnorm", "dropout", "act")
KERAS_WRAPPERS = ("plain", "residual", "sequential", "subclass")


def _draw_linen(r):
    return _draw_common(r, LINEN_KINDS, LINEN_WRAPPERS)


def _draw_nnx(r):
    return _draw_common(r, NNX_KINDS, NNX_WRAPPERS)


def _draw_haiku(r):
    return _draw_common(r, HAIKU_KINDS, HAIKU_WRAPPERS)


def _draw_equinox(r):
    spec = _draw_common(r, EQX_KINDS, EQX_WRAPPERS)
    spec["mlp_scan"] = r.random() < 0.3
    # a head re-initialized with eqx.tree_at and a jax.nn initializer (Equinox's FAQ), its law by expect=
    spec["reinit"] = draw_kernel_init(r, spec["dtype"] != "float32", orthogonal=False) if r.random() < 0.25 else None
    if spec["reinit"] and spec["reinit"][0] == "default":
        spec["reinit"] = ["he_normal"]
    return spec


def _draw_keras(r):
    spec = _draw_common(r, KERAS_KINDS, KERAS_WRAPPERS)
    spec["seeded"] = r.random() < 0.3  # explicit, distinct int seeds on the initializers
    return spec


DRAWERS = {
    "linen": _draw_linen,
    "nnx": _draw_nnx,
    "haiku": _draw_haiku,
    "equinox": _draw_equinox,
    "keras": _draw_keras,
}


# --- initializers ------------------------------------------------------------------------------------


def jax_init(init: list | None):
    """A ``jax.nn.initializers`` (Flax's, nnx's: the same closures) initializer, or None (the layer's default)."""
    import jax

    inits = jax.nn.initializers
    if init is None or init[0] == "default":
        return None
    family, *args = init
    if family in NAMED:
        return getattr(inits, family)()
    if family == "variance_scaling":
        return inits.variance_scaling(*args)
    if family == "normal":
        return inits.normal(args[0])
    if family == "truncated_normal":
        return inits.truncated_normal(args[0])
    if family == "uniform":
        return inits.uniform(args[0])
    if family == "orthogonal":
        return inits.orthogonal(args[0])
    if family == "constant":
        return inits.constant(args[0])
    return {"zeros": inits.zeros, "ones": inits.ones}[family]


def _kw(**kwargs):
    return {k: v for k, v in kwargs.items() if v is not None}


def haiku_init(init: list | None):
    import haiku as hk

    hi = hk.initializers
    if init is None or init[0] == "default":
        return None
    family, *args = init
    named = {  # jax's named initializers, written as Haiku writes them
        "lecun_normal": (1.0, "fan_in", "truncated_normal"),
        "lecun_uniform": (1.0, "fan_in", "uniform"),
        "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
        "glorot_uniform": (1.0, "fan_avg", "uniform"),
        "he_normal": (2.0, "fan_in", "truncated_normal"),
        "he_uniform": (2.0, "fan_in", "uniform"),
    }
    if family in named:
        return hi.VarianceScaling(*named[family])
    if family == "variance_scaling":
        return hi.VarianceScaling(*args)
    if family == "normal":
        return hi.RandomNormal(args[0])
    if family == "truncated_normal":
        return hi.TruncatedNormal(args[0])
    if family == "uniform":
        return hi.RandomUniform(-args[0], args[0])
    if family == "orthogonal":
        return hi.Orthogonal(args[0])
    if family == "constant":
        return hi.Constant(args[0])
    return hi.Constant({"zeros": 0.0, "ones": 1.0}[family])


class _KerasSeeds:
    """Distinct explicit int seeds for the initializers of one Keras model, when the spec asks."""

    def __init__(self, seeded: bool, start: int):
        self.seeded, self.next = seeded, start

    def __call__(self):
        if not self.seeded:
            return None
        self.next += 1
        return self.next


def keras_init(init: list | None, seeds, default: str):
    import keras

    ki = keras.initializers
    if init is None or init[0] == "default":
        return default
    family, *args = init
    seed = {"seed": seeds()} if family not in ("zeros", "ones", "constant") else {}
    if family in NAMED:
        name = {"lecun": "Lecun", "glorot": "Glorot", "he": "He"}[family.split("_")[0]]
        return getattr(ki, name + family.split("_")[1].capitalize())(**seed)
    if family == "variance_scaling":
        dist = {"normal": "untruncated_normal"}.get(args[2], args[2])
        return ki.VarianceScaling(args[0], args[1], dist, **seed)
    if family == "normal":
        return ki.RandomNormal(stddev=args[0], **seed)
    if family == "truncated_normal":
        return ki.TruncatedNormal(stddev=args[0], **seed)
    if family == "uniform":
        return ki.RandomUniform(-args[0], args[0], **seed)
    if family == "orthogonal":
        return ki.Orthogonal(args[0], **seed)
    if family == "constant":
        return ki.Constant(args[0])
    return {"zeros": ki.Zeros, "ones": ki.Ones}[family]()


def _act(name):
    import jax

    return {"relu": jax.nn.relu, "gelu": jax.nn.gelu, "tanh": jax.numpy.tanh, "silu": jax.nn.silu}[name]


def _jnp_dtype(name):
    import jax.numpy as jnp

    return jnp.dtype(name)


def _float_inputs(spec, single=False):
    import numpy as np

    shape = (spec["length"], spec["width"]) if single else (spec["batch"], spec["length"], spec["width"])
    return np.random.default_rng(spec["seed"]).normal(size=shape).astype(np.float32)


def _token_inputs(spec, single=False):
    import numpy as np

    shape = (spec["length"],) if single else (spec["batch"], spec["length"])
    return np.random.default_rng(spec["seed"]).integers(0, spec["embed"]["vocab"], size=shape).astype(np.int32)


def _inputs(spec, single=False):
    return _token_inputs(spec, single) if spec["embed"] else _float_inputs(spec, single)


def _has(spec, kind) -> bool:
    return any(layer["kind"] == kind for stage in spec["stages"] for layer in stage["layers"])


# --- Flax linen ----------------------------------------------------------------------------------------


def _linen_layer(layer: dict, x, param_dtype):
    import flax.linen as nn

    kind = layer["kind"]
    common = dict(param_dtype=param_dtype)
    if kind in ("dense", "dense_general", "conv", "attention"):
        common.update(_kw(kernel_init=jax_init(layer["kernel_init"]), bias_init=jax_init(layer["bias_init"])))
        common["use_bias"] = layer["use_bias"]
    if kind == "dense":
        return nn.Dense(layer["features"], **common)(x)
    if kind == "dense_general":
        heads = layer["heads"]
        y = nn.DenseGeneral((heads, layer["features"] // heads), **common)(x)
        return y.reshape(*y.shape[:-2], layer["features"])
    if kind == "conv":
        return nn.Conv(layer["features"], (layer["kernel_size"],), **common)(x)
    if kind == "attention":
        out_init = jax_init(layer["out_kernel_init"])
        return nn.MultiHeadDotProductAttention(
            num_heads=layer["heads"],
            qkv_features=layer["heads"] * layer["head_dim"],
            **_kw(out_kernel_init=out_init),
            **common,
        )(x, x)
    if kind == "layernorm":
        return nn.LayerNorm(
            **_kw(scale_init=jax_init(layer["scale_init"]), bias_init=jax_init(layer["bias_init"])), **common
        )(x)
    if kind == "batchnorm":
        return nn.BatchNorm(
            use_running_average=False,
            **_kw(scale_init=jax_init(layer["scale_init"]), bias_init=jax_init(layer["bias_init"])),
            **common,
        )(x)
    if kind == "dropout":
        return nn.Dropout(layer["rate"], deterministic=False)(x)
    return _act(layer["fn"])(x)


def _freeze(obj):
    """Specs as hashable tuples (linen Module fields), and back."""
    return json.dumps(obj, sort_keys=True)


def build_linen(spec):
    import flax.linen as nn
    import jax.numpy as jnp

    param_dtype = _jnp_dtype(spec["dtype"])

    class Block(nn.Module):
        """A residual block; the carry signature ``(x, _) -> (x, None)`` makes it scannable."""

        layers: str  # the layer specs as JSON

        @nn.compact
        def __call__(self, x, _=None):
            y = x
            for layer in json.loads(self.layers):
                y = _linen_layer(layer, y, param_dtype)
            return x + y, None

    class Layer(nn.Module):
        """One layer as a module, for ``nn.Sequential``."""

        layer: str

        @nn.compact
        def __call__(self, x):
            return _linen_layer(json.loads(self.layer), x, param_dtype)

    lifted = {"variable_axes": {"params": 0, "batch_stats": 0}, "split_rngs": {"params": True, "dropout": True}}

    class Ensemble(nn.Module):
        """An ensemble of blocks (``nn.vmap``), averaged."""

        layers: str
        members: int

        @nn.compact
        def __call__(self, x, _=None):
            ys, _ = nn.vmap(Block, in_axes=None, out_axes=0, axis_size=self.members, **lifted)(
                self.layers, name="members"
            )(x)
            return ys.mean(axis=0), None

    def scan(cls, length):
        return nn.scan(cls, length=length, **lifted)

    class Model(nn.Module):
        @nn.compact
        def __call__(self, x):
            if spec["embed"]:
                init = jax_init(spec["embed"]["init"])
                x = nn.Embed(
                    spec["embed"]["vocab"], spec["width"], param_dtype=param_dtype, **_kw(embedding_init=init)
                )(x)
            for i, stage in enumerate(spec["stages"]):
                layers, wrapper = _freeze(stage["layers"]), stage["wrapper"]
                name = f"stage_{i}"
                if wrapper == "plain":
                    for layer in stage["layers"]:
                        x = _linen_layer(layer, x, param_dtype)
                elif wrapper == "nested":
                    x, _ = Block(layers, name=name)(x)
                elif wrapper == "sequential":
                    x = x + nn.Sequential([Layer(_freeze(layer)) for layer in stage["layers"]], name=name)(x)
                elif wrapper == "remat":
                    x, _ = nn.remat(Block)(layers, name=name)(x)
                elif wrapper == "scan":
                    x, _ = scan(Block, stage["length"])(layers, name=name)(x)
                elif wrapper == "remat_scan":
                    x, _ = scan(nn.remat(Block, prevent_cse=False), stage["length"])(layers, name=name)(x)
                elif wrapper == "vmap":
                    x, _ = Ensemble(layers, stage["length"] + 1, name=name)(x)
                elif wrapper == "scan_vmap":
                    x, _ = scan(Ensemble, stage["length"])(layers, 2, name=name)(x)
            return _linen_layer(spec["head"], jnp.mean(x, axis=1), param_dtype)

    rng = {"params": AUDIT_RNG, "dropout": DROPOUT_RNG} if _has(spec, "dropout") else AUDIT_RNG
    return Model(), (_inputs(spec),), {"rng": rng}


# --- Flax nnx ------------------------------------------------------------------------------------------


def _nnx_layer(layer: dict, width: int, param_dtype, rngs):
    """An nnx layer (or a function) mapping ``width`` features to ``layer['features']``."""
    from flax import nnx

    kind = layer["kind"]
    common = dict(param_dtype=param_dtype, rngs=rngs)
    if kind in ("dense", "dense_general", "conv", "attention"):
        common.update(_kw(kernel_init=jax_init(layer["kernel_init"]), bias_init=jax_init(layer["bias_init"])))
        common["use_bias"] = layer["use_bias"]
    if kind == "dense":
        return nnx.Linear(width, layer["features"], **common)
    if kind == "dense_general":
        heads = layer["heads"]
        return _NnxHeads(nnx.LinearGeneral(width, (heads, layer["features"] // heads), **common))
    if kind == "conv":
        return nnx.Conv(width, layer["features"], (layer["kernel_size"],), **common)
    if kind == "attention":
        return nnx.MultiHeadAttention(
            num_heads=layer["heads"],
            in_features=width,
            qkv_features=layer["heads"] * layer["head_dim"],
            decode=False,
            **_kw(out_kernel_init=jax_init(layer["out_kernel_init"])),
            **common,
        )
    norms = (
        _kw(scale_init=jax_init(layer["scale_init"]), bias_init=jax_init(layer["bias_init"]))
        if "scale_init" in layer
        else {}
    )
    if kind == "layernorm":
        return nnx.LayerNorm(width, **norms, **common)
    if kind == "rmsnorm":
        return nnx.RMSNorm(width, **_kw(scale_init=norms.get("scale_init")), **common)
    if kind == "batchnorm":
        return nnx.BatchNorm(width, use_running_average=False, **norms, **common)
    if kind == "dropout":
        return nnx.Dropout(layer["rate"], rngs=rngs)
    return _act(layer["fn"])


def _nnx_classes():
    from flax import nnx

    class NnxHeads(nnx.Module):
        """A LinearGeneral with (heads, head_dim) outputs, flattened back (as attention code does)."""

        def __init__(self, inner):
            self.inner = inner

        def __call__(self, x):
            y = self.inner(x)
            return y.reshape(*y.shape[:-2], -1)

    class NnxBlock(nnx.Module):
        """A residual block of layers kept in an ``nnx.List``."""

        def __init__(self, layers: list, width: int, param_dtype, rngs: nnx.Rngs):
            made, w = [], width
            for layer in layers:
                made.append(_nnx_layer(layer, w, param_dtype, rngs))
                w = layer["features"]
            self.layers = nnx.List(made)

        def __call__(self, x):
            y = x
            for layer in self.layers:
                y = layer(y)
            return x + y

    return NnxHeads, NnxBlock


def _NnxHeads(inner):
    return _nnx_classes_cached()[0](inner)


_NNX = []


def _nnx_classes_cached():
    if not _NNX:
        _NNX.extend(_nnx_classes())
    return _NNX


def build_nnx(spec):
    import jax.numpy as jnp
    from flax import nnx

    _, NnxBlock = _nnx_classes_cached()
    param_dtype = _jnp_dtype(spec["dtype"])
    width = spec["width"]

    class Stacked(nnx.Module):
        """The nnx guide's stack: blocks made with split rngs under ``nnx.vmap``, then run with
        ``nnx.scan`` (a stack) or ``nnx.vmap`` (an ensemble, averaged)."""

        def __init__(self, layers, length, ensemble, *, rngs):
            @nnx.split_rngs(splits=length)
            @nnx.vmap(in_axes=(0,), out_axes=0)
            def create(rngs):
                return NnxBlock(layers, width, param_dtype, rngs)

            self.blocks = create(rngs)
            self.ensemble = ensemble

        def __call__(self, x):
            if self.ensemble:
                return nnx.vmap(lambda block, x: block(x), in_axes=(0, None), out_axes=0)(self.blocks, x).mean(axis=0)

            @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
            def forward(x, block):
                return block(x)

            return forward(x, self.blocks)

    class Model(nnx.Module):
        def __init__(self, *, rngs: nnx.Rngs):
            if spec["embed"]:
                init = jax_init(spec["embed"]["init"])
                self.embed = nnx.Embed(
                    spec["embed"]["vocab"], width, param_dtype=param_dtype, rngs=rngs, **_kw(embedding_init=init)
                )
            else:
                self.embed = None
            stages = []
            for stage in spec["stages"]:
                wrapper, layers = stage["wrapper"], stage["layers"]
                if wrapper == "plain":
                    made, w = [], width
                    for layer in layers:
                        made.append(_nnx_layer(layer, w, param_dtype, rngs))
                        w = layer["features"]
                    stages.append(nnx.Sequential(*made))
                elif wrapper == "nested":
                    stages.append(NnxBlock(layers, width, param_dtype, rngs))
                elif wrapper == "sequential":
                    made, w = [], width
                    for layer in layers:
                        made.append(_nnx_layer(layer, w, param_dtype, rngs))
                        w = layer["features"]
                    stages.append(nnx.Sequential(*made))
                else:
                    stages.append(Stacked(layers, stage["length"] + (wrapper == "vmap"), wrapper == "vmap", rngs=rngs))
            self.stages = nnx.List(stages)
            self.head = _nnx_layer(spec["head"], width, param_dtype, rngs)

        def __call__(self, x):
            if self.embed is not None:
                x = self.embed(x)
            for stage in self.stages:
                x = stage(x)
            return self.head(jnp.mean(x, axis=1))

    return Model, (), {"rng": {"params": AUDIT_RNG, "dropout": DROPOUT_RNG}, "call_args": (_inputs(spec),)}


# --- Haiku ---------------------------------------------------------------------------------------------


def _haiku_layer(layer: dict, x, is_training: bool):
    import haiku as hk

    kind = layer["kind"]
    if kind in ("dense", "conv", "mlp", "attention"):
        w_init = haiku_init(layer["kernel_init"])
        b_init = haiku_init(layer["bias_init"]) if layer["use_bias"] else None  # Haiku refuses b_init without bias
    if kind == "dense":
        return hk.Linear(layer["features"], with_bias=layer["use_bias"], w_init=w_init, b_init=b_init)(x)
    if kind == "conv":
        return hk.Conv1D(
            layer["features"], layer["kernel_size"], with_bias=layer["use_bias"], w_init=w_init, b_init=b_init
        )(x)
    if kind == "mlp":
        sizes = [layer["hidden"]] * layer["depth"] + [layer["features"]]
        return hk.nets.MLP(sizes, w_init=w_init, b_init=b_init, with_bias=layer["use_bias"])(x)
    if kind == "attention":
        if w_init is None:  # hk.MultiHeadAttention asks for an explicit w_init
            w_init = hk.initializers.VarianceScaling(1.0)
        return hk.MultiHeadAttention(
            num_heads=layer["heads"],
            key_size=layer["head_dim"],
            model_size=layer["features"],
            w_init=w_init,
            b_init=b_init,
            with_bias=layer["use_bias"],
        )(x, x, x)
    if kind in ("layernorm", "batchnorm"):
        scale_init, offset_init = haiku_init(layer["scale_init"]), haiku_init(layer["bias_init"])
    if kind == "layernorm":
        return hk.LayerNorm(
            axis=-1, create_scale=True, create_offset=True, scale_init=scale_init, offset_init=offset_init
        )(x)
    if kind == "batchnorm":
        return hk.BatchNorm(True, True, 0.9, scale_init=scale_init, offset_init=offset_init)(x, is_training=is_training)
    if kind == "dropout":
        return hk.dropout(hk.next_rng_key(), layer["rate"], x)
    return _act(layer["fn"])(x)


def build_haiku(spec):
    import haiku as hk
    import jax.numpy as jnp

    def body(layers):
        def block(x):
            y = x
            for layer in layers:
                y = _haiku_layer(layer, y, True)
            return x + y

        return block

    class Block(hk.Module):
        """A residual block as a module of its own (its parameters under its name)."""

        def __init__(self, layers, transparent=False, name=None):
            super().__init__(name=name)
            self.layers, self.transparent = layers, transparent

        def __call__(self, x):
            return self._inner(x) if self.transparent else body(self.layers)(x)

        @hk.transparent
        def _inner(self, x):  # hk.transparent: its modules are named as if made in __call__'s caller
            return body(self.layers)(x)

    def forward(x):
        if spec["embed"]:
            x = hk.Embed(spec["embed"]["vocab"], spec["width"], w_init=haiku_init(spec["embed"]["init"]))(x)
        if spec["dtype"] != "float32":  # Haiku makes a layer's params in its input's dtype
            x = x.astype(spec["dtype"])
        for i, stage in enumerate(spec["stages"]):
            wrapper, layers = stage["wrapper"], stage["layers"]
            if wrapper == "plain":
                for layer in layers:
                    x = _haiku_layer(layer, x, True)
            elif wrapper in ("nested", "transparent"):
                x = Block(layers, transparent=wrapper == "transparent", name=f"stage_{i}")(x)
            elif wrapper == "sequential":
                x = x + hk.Sequential([lambda y, layer=layer: _haiku_layer(layer, y, True) for layer in layers])(x)
            elif wrapper == "remat":
                x = hk.remat(body(layers))(x)
            elif wrapper == "layer_stack":
                x = hk.layer_stack(stage["length"], name=f"stack_{i}")(body(layers))(x)
            elif wrapper == "nested_stack":
                inner = hk.layer_stack(2, name="inner")(body(layers))
                x = hk.layer_stack(stage["length"], name=f"stack_{i}")(inner)(x)
        return _haiku_layer(spec["head"], jnp.mean(x, axis=1), True)

    transform = hk.transform_with_state if _has(spec, "batchnorm") else hk.transform
    return transform(forward), (_inputs(spec),), {"rng": AUDIT_RNG}


# --- Equinox -------------------------------------------------------------------------------------------


def _eqx_layer(layer: dict, width: int, dtype, key):
    """An Equinox layer on one token (``width`` features), or on the sequence (attention, conv)."""
    import equinox as eqx

    kind = layer["kind"]
    if kind == "dense":
        return ("token", eqx.nn.Linear(width, layer["features"], use_bias=layer["use_bias"], dtype=dtype, key=key))
    if kind == "conv":  # channels first: the sequence transposed
        conv = eqx.nn.Conv1d(
            width,
            layer["features"],
            layer["kernel_size"],
            padding="SAME",
            use_bias=layer["use_bias"],
            dtype=dtype,
            key=key,
        )
        return ("channels", conv)
    if kind == "mlp":
        mlp = eqx.nn.MLP(
            width, layer["features"], layer["hidden"], layer["depth"], use_bias=layer["use_bias"], dtype=dtype, key=key
        )
        return ("token", mlp)
    if kind == "attention":
        bias = layer["use_bias"]
        attention = eqx.nn.MultiheadAttention(
            layer["heads"],
            width,
            qk_size=layer["head_dim"],
            vo_size=layer["head_dim"],
            use_query_bias=bias,
            use_key_bias=bias,
            use_value_bias=bias,
            use_output_bias=bias,
            dtype=dtype,
            key=key,
        )
        return ("attention", attention)
    if kind == "layernorm":
        return ("token", eqx.nn.LayerNorm(width, dtype=dtype))
    if kind == "rmsnorm":
        return ("token", eqx.nn.RMSNorm(width, dtype=dtype))
    if kind == "batchnorm":
        return ("batchnorm", eqx.nn.BatchNorm(width, axis_name="batch", mode="batch", dtype=dtype))
    return ("token", eqx.nn.Lambda(_act(layer["fn"])))


def _eqx_apply(how, layer, x, state):
    import jax

    if how == "token":
        return jax.vmap(layer)(x), state
    if how == "channels":
        return layer(x.T).T, state
    if how == "attention":
        return layer(x, x, x), state
    # batchnorm: over the features of each token, batch statistics over the vmapped "batch" axis
    y, state = layer(x.T, state)  # BatchNorm normalizes axis 0 (channels)
    return y.T, state


def _eqx_classes():
    import equinox as eqx
    import jax

    class Block(eqx.Module):
        """A residual block: a list of (how it is applied, layer)."""

        hows: tuple = eqx.field(static=True)
        layers: list

        def __init__(self, layers, width, dtype, key):
            made, w = [], width
            for layer, k in zip(layers, jax.random.split(key, len(layers))):
                made.append(_eqx_layer(layer, w, dtype, k))
                w = layer["features"]
            self.hows = tuple(h for h, _ in made)
            self.layers = [m for _, m in made]

        def __call__(self, x, state):
            y = x
            for how, layer in zip(self.hows, self.layers):
                y, state = _eqx_apply(how, layer, y, state)
            return x + y, state

    class SeqBlock(eqx.Module):
        """Per-token layers in an ``eqx.nn.Sequential``."""

        seq: eqx.nn.Sequential

        def __init__(self, layers, width, dtype, key):
            made, w = [], width
            for layer, k in zip(layers, jax.random.split(key, len(layers))):
                made.append(_eqx_layer(layer, w, dtype, k)[1])
                w = layer["features"]
            self.seq = eqx.nn.Sequential(made)

        def __call__(self, x, state):
            return x + jax.vmap(self.seq)(x), state

    class Model(eqx.Module):
        embed: eqx.nn.Embedding | None
        stages: list
        head: eqx.Module
        head_how: str = eqx.field(static=True)
        batchnorm: bool = eqx.field(static=True)

        def __init__(self, spec, key):
            dtype = _jnp_dtype(spec["dtype"])
            width = spec["width"]
            embed_key, head_key, *stage_keys = jax.random.split(key, 2 + len(spec["stages"]))
            self.embed = (
                eqx.nn.Embedding(spec["embed"]["vocab"], width, dtype=dtype, key=embed_key) if spec["embed"] else None
            )
            stages = []
            for stage, k in zip(spec["stages"], stage_keys):
                wrapper, layers = stage["wrapper"], stage["layers"]
                if wrapper == "sequential" and all(
                    _eqx_layer(layer, 4, None, jax.random.key(0))[0] == "token" for layer in layers
                ):
                    stages.append(SeqBlock(layers, width, dtype, k))
                elif wrapper == "list":
                    stages.append([Block(layers, width, dtype, kk) for kk in jax.random.split(k, stage["length"])])
                else:
                    stages.append(Block(layers, width, dtype, k))
            self.stages = stages
            self.head_how, self.head = _eqx_layer(spec["head"], width, dtype, head_key)
            self.batchnorm = _has(spec, "batchnorm")

        def _one(self, x, state):
            if self.embed is not None:
                x = jax.vmap(self.embed)(x)
            for stage in self.stages:
                for block in stage if isinstance(stage, list) else [stage]:
                    x, state = block(x, state)
            return self.head(x.mean(axis=0)), state

        def __call__(self, xs, state=None):
            """A batch: BatchNorm's statistics over the vmapped "batch" axis."""
            return jax.vmap(self._one, axis_name="batch", in_axes=(0, None), out_axes=(0, None))(xs, state)

    return Model


_EQX = []


def build_equinox(spec):
    import equinox as eqx
    import jax

    if not _EQX:
        _EQX.append(_eqx_classes())
    Model = _EQX[0]
    stateful = _has(spec, "batchnorm")
    reinit = spec.get("reinit")

    def factory(key):
        if reinit is None:
            model_key = key
        else:
            model_key, init_key = jax.random.split(key)
        made = eqx.nn.make_with_state(Model)(spec, model_key) if stateful else Model(spec, model_key)
        if reinit is not None:  # the FAQ's way to use another initializer: replace the head's weight
            model = made[0] if stateful else made
            weight = model.head.weight
            new = _eqx_reinit(reinit)(init_key, weight.shape, weight.dtype)
            model = eqx.tree_at(lambda m: m.head.weight, model, new)
            made = (model, made[1]) if stateful else model
        return made

    inputs = _inputs(spec)
    if not spec["embed"]:  # Equinox layers take inputs of their own dtype
        inputs = inputs.astype(_jnp_dtype(spec["dtype"]))
    options = {"rng": AUDIT_RNG, "call_args": (inputs,)}
    if reinit is not None:
        options["expect"] = {"head/weight": _eqx_reinit_law(reinit)}
    return factory, (), options


def _eqx_reinit(init):
    """A jax.nn initializer for an Equinox (out, in) weight: in_axis=-1, out_axis=-2."""
    import jax

    inits = jax.nn.initializers
    family, *args = init
    if family in NAMED:
        return getattr(inits, family)(in_axis=-1, out_axis=-2)
    if family == "variance_scaling":
        return inits.variance_scaling(*args, in_axis=-1, out_axis=-2)
    return jax_init(init)


def _eqx_reinit_law(init):
    from initcheck import laws

    family, *args = init
    named = {
        "lecun_normal": (1.0, "fan_in", "truncated_normal"),
        "lecun_uniform": (1.0, "fan_in", "uniform"),
        "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
        "glorot_uniform": (1.0, "fan_avg", "uniform"),
        "he_normal": (2.0, "fan_in", "truncated_normal"),
        "he_uniform": (2.0, "fan_in", "uniform"),
    }
    if family in named or family == "variance_scaling":
        return laws.VarianceScaling(*(named.get(family) or args), in_axis=-1, out_axis=-2)
    if family == "normal":
        return laws.Normal(args[0])
    if family == "truncated_normal":
        return laws.TruncatedNormal(args[0])
    if family == "uniform":
        return laws.Uniform(0.0, args[0])
    if family == "constant":
        return laws.Constant(args[0])
    return laws.Constant({"zeros": 0.0, "ones": 1.0}[family])


# --- Keras ---------------------------------------------------------------------------------------------


def _keras_layer(layer: dict, seeds, dtype):
    """A Keras layer; attention layers are called ``(x, x)``: the second item says so."""
    import keras

    L = keras.layers
    kind = layer["kind"]
    kw = {"dtype": dtype}
    if kind in ("dense", "conv"):
        kw.update(
            kernel_initializer=keras_init(layer["kernel_init"], seeds, "glorot_uniform"),
            bias_initializer=keras_init(layer["bias_init"], seeds, "zeros"),
            use_bias=layer["use_bias"],
        )
    if kind == "dense":
        return L.Dense(layer["features"], **kw), False
    if kind == "conv":
        return L.Conv1D(layer["features"], layer["kernel_size"], padding="same", **kw), False
    if kind == "attention":
        # unseeded: MultiHeadAttention clones its initializer for each projection (a seeded one would
        # give q, k, v and the output one key)
        unseeded = lambda: None
        return (
            L.MultiHeadAttention(
                layer["heads"],
                layer["head_dim"],
                kernel_initializer=keras_init(layer["kernel_init"], unseeded, "glorot_uniform"),
                bias_initializer=keras_init(layer["bias_init"], unseeded, "zeros"),
                use_bias=layer["use_bias"],
                **kw,
            ),
            True,
        )
    if kind == "layernorm":
        return (
            L.LayerNormalization(
                gamma_initializer=keras_init(layer["scale_init"], seeds, "ones"),
                beta_initializer=keras_init(layer["bias_init"], seeds, "zeros"),
                **kw,
            ),
            False,
        )
    if kind == "batchnorm":
        return (
            L.BatchNormalization(
                gamma_initializer=keras_init(layer["scale_init"], seeds, "ones"),
                beta_initializer=keras_init(layer["bias_init"], seeds, "zeros"),
                **kw,
            ),
            False,
        )
    if kind == "dropout":
        return L.Dropout(layer["rate"]), False
    return L.Activation(layer["fn"]), False


def build_keras(spec):
    import keras

    L = keras.layers
    keras.utils.set_random_seed(spec["seed"] % 2**31)
    seeds = _KerasSeeds(spec.get("seeded", False), spec["seed"] % 100_000 * 100)
    dtype = spec["dtype"]

    def apply(layers, x):
        for layer in layers:
            made, attention = _keras_layer(layer, seeds, dtype)
            x = made(x, x) if attention else made(x)
        return x

    class SubclassBlock(keras.layers.Layer):
        """A residual block as a subclassed layer holding its sublayers."""

        def __init__(self, layers, **kwargs):
            super().__init__(**kwargs)
            self.inner = [_keras_layer(layer, seeds, dtype) for layer in layers]

        def call(self, x):
            y = x
            for made, attention in self.inner:
                y = made(y, y) if attention else made(y)
            return x + y

    width = spec["width"]
    if spec["embed"]:
        inputs = keras.Input((spec["length"],), dtype="int32")
        x = L.Embedding(
            spec["embed"]["vocab"],
            width,
            embeddings_initializer=keras_init(spec["embed"]["init"], seeds, "uniform"),
            dtype=dtype,
        )(inputs)
    else:
        inputs = keras.Input((spec["length"], width))
        x = inputs
    for i, stage in enumerate(spec["stages"]):
        wrapper, layers = stage["wrapper"], stage["layers"]
        if wrapper == "plain":
            x = apply(layers, x)
        elif wrapper == "residual":
            x = L.Add()([x, apply(layers, x)])
        elif wrapper == "sequential" and not any(layer["kind"] == "attention" for layer in layers):
            nested = keras.Sequential([_keras_layer(layer, seeds, dtype)[0] for layer in layers], name=f"stage_{i}")
            x = L.Add()([x, nested(x)])
        else:
            x = SubclassBlock(layers, name=f"stage_{i}")(x)
    x = L.GlobalAveragePooling1D()(x)
    outputs = apply([spec["head"]], x)
    model = keras.Model(inputs, outputs, name=f"fuzz_{spec['seed']}")
    return model, (_inputs(spec),), {}


BUILDERS = {
    "linen": build_linen,
    "nnx": build_nnx,
    "haiku": build_haiku,
    "equinox": build_equinox,
    "keras": build_keras,
}


def build(spec: dict):
    """``(model, inputs, audit kwargs)`` for ``spec``."""
    return BUILDERS[spec["framework"]](spec)


def audit(seed: int):
    """The spec of ``seed`` and the audit's report of its model."""
    import initcheck

    spec = draw_spec(seed)
    model, inputs, options = build(spec)
    return spec, initcheck.audit(model, *inputs, **options)


# --- judging a report ------------------------------------------------------------------------------------


def judge(report, spec: dict) -> list[str]:
    """What in ``report`` is a false alarm for the correct model of ``spec`` (empty: none)."""
    problems = []
    recorded = collections.Counter((v.case.path, v.property) for v in report.verdicts)
    twice = [k for k, n in recorded.items() if n > 1]
    if twice:
        problems.append(f"values recorded twice: {twice}")
    low = spec["dtype"] != "float32"
    allowed_defect = KNOWN_DEFECTS[spec["framework"]]
    for v in report.verdicts:
        if v.status not in ("fail", "error"):
            continue
        if not v.known_defect:
            problems.append(f"{v.property} {v.status.upper()}: {v.case.path}: {v.message}")
        elif not low or v.known_defect != allowed_defect:
            problems.append(
                f"{v.property} marked {v.known_defect} in a {spec['dtype']} model: {v.case.path}: {v.message}"
            )
    undocumented = [g for g in report.coverage.gaps if not any(reason in g for reason in DOCUMENTED_GAPS)]
    if undocumented:
        problems.append(f"coverage gaps: {undocumented}")
    computed = {line.split(" (")[0] for line in report.coverage.computed}
    gapped = {g.split(" (")[0] for g in report.coverage.gaps}
    for v in report.verdicts:
        skipped = v.status not in ("pass", "fail", "error")
        if v.property == "derivation" and skipped and v.case.path not in computed and v.case.path not in gapped:
            problems.append(f"derivation {v.status.upper()}: {v.case.path}: {v.message}")
        if v.property == "effective_fan" and ("could not be traced" in v.message or "call_args" in v.message):
            problems.append(f"effective_fan not traced: {v.case.path}: {v.message}")
    allowed = {"pass", "known"} | ({"partial"} if report.coverage.gaps and not undocumented else set())
    if report.result not in allowed:
        problems.append(f"result {report.result!r}, expected one of {sorted(allowed)}")
    return problems


def describe(spec: dict) -> str:
    stages = " | ".join(
        f"{s['wrapper']}{'x' + str(s['length']) if 'length' in s else ''}[{', '.join(_short(layer) for layer in s['layers'])}]"
        for s in spec["stages"]
    )
    embed = f"embed({spec['embed']['vocab']}, {spec['embed']['init'][0]}) -> " if spec["embed"] else ""
    return f"seed {spec['seed']}: {spec['framework']} {spec['dtype']} width {spec['width']}: {embed}{stages} -> {_short(spec['head'])}"


def _short(layer):
    init = layer.get("kernel_init")
    return f"{layer['kind']}{'(' + init[0] + ')' if init else ''}"


def main(argv: list[str]) -> int:
    from initcheck import _xla

    _xla.prefer_fast_compiles()
    if argv[:1] == ["--range"]:
        start, stop = int(argv[1]), int(argv[2])
        bad = []
        for seed in range(start, stop):
            try:
                spec, report = audit(seed)
                problems = judge(report, spec)
                line = (
                    f"{report.result:8s} {report.seconds:5.1f}s bound={report.false_alarm_bound:.2e} {describe(spec)}"
                )
            except Exception as error:  # noqa: BLE001 (a crash: the seed is listed with its error)
                problems, line = [f"crash: {type(error).__name__}: {error}"], f"CRASH    {describe(draw_spec(seed))}"
            print(line, flush=True)
            for p in problems:
                print(f"    {p[:2000]}", flush=True)
            if problems:
                bad.append(seed)
        print(f"false alarms or crashes: {bad}")
        return 1 if bad else 0
    status = 0
    for seed in map(int, argv):
        spec, report = audit(seed)
        print(json.dumps(spec, indent=1))
        print(describe(spec))
        print(report)
        problems = judge(report, spec)
        print("\n".join(["false alarms:", *problems]) if problems else "no false alarm")
        status |= bool(problems)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
