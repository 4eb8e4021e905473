"""``effective_fan``: the fan each layer contracts its kernel over, read from the jaxpr of the forward
pass, against the fan its declared law divides by. Exact (no sampling): these tests have no false
alarm rate to state."""

from __future__ import annotations

import equinox as eqx
import flax.linen as nn
import haiku as hk
import jax
import jax.numpy as jnp
import pytest
from flax import nnx

import initcheck
from initcheck._audit import _contractions

FAN = "effective_fan"


def fan_verdicts(report) -> dict:
    return {v.case.path: v for v in report.verdicts if v.property == FAN}


def test_einsum_with_its_default_init_divides_by_a_fan_four_times_too_large():
    report = initcheck.audit(nn.Einsum((16, 4, 8), "bi,ihk->bhk"), jnp.ones((2, 16)), rng=0)
    kernel = fan_verdicts(report)["kernel"]
    assert kernel.status == "fail"
    assert "`ab,bcd->acd` contracts over its axis 0 (16) but the law divides by 64" in kernel.message
    assert "output variance x0.25" in kernel.message
    assert kernel.statistic == pytest.approx(0.25)
    assert fan_verdicts(report)["bias"].status == "skip"
    assert "feeds no contraction, only add" in fan_verdicts(report)["bias"].message
    # Every other property holds: the kernel keeps its law, the layer does not keep the signal.
    assert [v.property for v in report.failures] == [FAN]


def _hk(f, *inputs):
    return hk.transform(f), inputs


class MHALinen(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.MultiHeadDotProductAttention(num_heads=4, qkv_features=32)(x)


def haiku_mha(x):
    return hk.MultiHeadAttention(num_heads=4, key_size=8, w_init=hk.initializers.VarianceScaling(1.0))(x, x, x)


PASSING = {
    "nn.Dense": lambda: (nn.Dense(32), (jnp.ones((2, 16)),), {}),
    "nn.Conv": lambda: (nn.Conv(8, (3, 3)), (jnp.ones((1, 8, 8, 4)),), {}),
    "nn.Conv grouped": lambda: (nn.Conv(8, (3, 3), feature_group_count=2), (jnp.ones((1, 8, 8, 4)),), {}),
    "nn.DenseGeneral": lambda: (nn.DenseGeneral((4, 8), axis=(-2, -1)), (jnp.ones((2, 16, 32)),), {}),
    "nn.MultiHeadDotProductAttention": lambda: (MHALinen(), (jnp.ones((2, 5, 16)),), {}),
    "nnx.Linear": lambda: (nnx.Linear, (16, 32), {"call_args": (jnp.ones((2, 16)),)}),
    "nnx.Conv": lambda: (nnx.Conv, (4, 8, (3, 3)), {"call_args": (jnp.ones((1, 8, 8, 4)),)}),
    "nnx.MultiHeadAttention": lambda: (
        nnx.MultiHeadAttention,
        (4, 32),
        {"call_args": (jnp.ones((2, 5, 32)),), "call_kwargs": {"decode": False}},
    ),
    "hk.Linear": lambda: (hk.transform(lambda x: hk.Linear(32)(x)), (jnp.ones((2, 16)),), {}),
    "hk.Conv2D": lambda: (hk.transform(lambda x: hk.Conv2D(8, 3)(x)), (jnp.ones((1, 8, 8, 4)),), {}),
    "hk.MultiHeadAttention": lambda: (hk.transform(haiku_mha), (jnp.ones((2, 5, 16)),), {}),
}


@pytest.mark.parametrize("name", PASSING)
def test_the_frameworks_layers_contract_over_the_fan_their_law_divides_by(name):
    model, inputs, options = PASSING[name]()
    report = initcheck.audit(model, *inputs, rng=0, properties=[FAN], **options)
    verdicts = fan_verdicts(report)
    kernels = {path: v for path, v in verdicts.items() if path.endswith(("kernel", "/w", "w"))}
    assert kernels, verdicts
    assert all(v.status == "pass" for v in kernels.values()), {p: v.message for p, v in kernels.items()}
    assert report.passed, report.failure_text()


def test_a_convolution_counts_its_receptive_field():
    report = initcheck.audit(nn.Conv(8, (3, 3)), jnp.ones((1, 8, 8, 4)), rng=0, properties=[FAN])
    message = fan_verdicts(report)["kernel"].message
    assert "conv, kernel HWIO (3x3 window)" in message and "contracts over its axes 0, 1, 2 (36)" in message


class TorchLayout(nn.Module):
    """A kernel stored (out, in), as PyTorch stores it, used as x @ w.T, with JAX's axes law."""

    @nn.compact
    def __call__(self, x):
        w = self.param("weight", nn.initializers.lecun_normal(), (32, x.shape[-1]))
        return x @ w.T


class TorchLayoutFanOut(nn.Module):
    @nn.compact
    def __call__(self, x):
        w = self.param("weight", nn.initializers.variance_scaling(2.0, "fan_out", "normal"), (32, x.shape[-1]))
        return x @ w.T


def test_a_pytorch_layout_kernel_checked_with_jax_axes_fails():
    report = initcheck.audit(TorchLayout(), jnp.ones((2, 16)), rng=0)
    weight = fan_verdicts(report)["weight"]
    assert weight.status == "fail"
    assert "contracts over its axis 1 (16) but the law divides by 32" in weight.message
    assert "output variance x0.5" in weight.message
    fan_out = fan_verdicts(initcheck.audit(TorchLayoutFanOut(), jnp.ones((2, 16)), rng=0))["weight"]
    assert fan_out.status == "fail"
    assert "keeps its axis 0 (32) but the law divides by 16 (fan_out of (32, 16)): gradient variance x2" in (
        fan_out.message
    )


class Block(nn.Module):
    @nn.compact
    def __call__(self, x, _):
        return nn.Dense(64, kernel_init=nn.initializers.xavier_uniform())(x), None


class EinsumBlock(nn.Module):
    @nn.compact
    def __call__(self, x, _):
        return nn.Einsum((64, 4, 16), "bi,ihk->bhk")(x).reshape(x.shape), None


class Stack(nn.Module):
    block: type = Block

    @nn.compact
    def __call__(self, x):
        scanned = nn.scan(nn.remat(self.block), variable_axes={"params": 0}, split_rngs={"params": True}, length=4)
        return scanned()(x, None)[0]


def test_scanned_layers_are_followed_into_the_scan_body():
    report = initcheck.audit(Stack(), jnp.ones((2, 64)), rng=0)
    kernel = fan_verdicts(report)["ScanCheckpointBlock_0/Dense_0/kernel"]
    assert kernel.status == "pass", kernel.message
    assert "contracts over its axis 1 (64), keeps its axis 2 (64) (inside scan > remat2): fan_avg 64" in kernel.message
    bad = fan_verdicts(initcheck.audit(Stack(EinsumBlock), jnp.ones((2, 64)), rng=0))
    kernel = bad["ScanCheckpointEinsumBlock_0/Einsum_0/kernel"]
    assert kernel.status == "fail"
    assert "contracts over its axis 1 (64) (inside scan > remat2) but the law divides by 256" in kernel.message


def test_dense_general_with_batch_dims_fails_naming_the_batch_axis():
    report = initcheck.audit(nn.DenseGeneral(32, batch_dims=(0,)), jnp.ones((8, 4, 64)), rng=0)
    kernel = fan_verdicts(report)["kernel"]
    assert kernel.status == "fail"
    assert (
        "contracts over its axis 1 (64) but the law divides by 512 (fan_in of the shape (512, 32) the initializer "
        "drew): the law counts its batch axis 0 (8) in the fan: output variance x0.125" in kernel.message
    )
    # The values follow the law of what the layer drew: only the fan it uses is wrong.
    assert [v.property for v in report.failures] == [FAN]


class Standardized(nn.Module):
    """BiT's StdConv: the kernel is standardized before use; its fan is not what scales it."""

    @nn.compact
    def __call__(self, x):
        w = self.param("kernel", nn.initializers.lecun_normal(), (3, 3, x.shape[-1], 8))
        w = (w - w.mean(axis=(0, 1, 2))) / (w.std(axis=(0, 1, 2)) + 1e-5)
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def test_a_kernel_computed_on_before_its_contraction_is_a_named_skip():
    verdict = fan_verdicts(initcheck.audit(Standardized(), jnp.ones((1, 8, 8, 4)), rng=0))["kernel"]
    assert verdict.status == "skip"
    assert "feeds no contraction, only" in verdict.message and "reduce_sum" in verdict.message


def test_an_embedding_looked_up_by_gather_is_skipped_and_a_tied_head_is_checked():
    class Tied(nn.Module):
        @nn.compact
        def __call__(self, tokens):
            embed = nn.Embed(64, 16)
            return embed.attend(embed(tokens))

    verdict = fan_verdicts(initcheck.audit(Tied(), jnp.ones((2, 5), jnp.int32), rng=0))["Embed_0/embedding"]
    assert verdict.status == "pass" and "contracts over its axis 1 (16)" in verdict.message
    lookup = fan_verdicts(initcheck.audit(nn.Embed(64, 16), jnp.ones((2, 5), jnp.int32), rng=0))["embedding"]
    assert lookup.status == "skip" and "gather" in lookup.message


def test_an_nnx_model_without_forward_inputs_is_skipped_with_the_fix():
    verdict = fan_verdicts(initcheck.audit(nnx.Linear, 16, 32, rng=0))["kernel"]
    assert verdict.status == "skip" and "call_args=(x,)" in verdict.message


def test_a_model_whose_forward_pass_does_not_trace_is_a_skip_not_a_crash():
    class NeedsConcrete(nn.Module):
        @nn.compact
        def __call__(self, x):
            y = nn.Dense(8)(x)
            return y if bool(jnp.all(jnp.isfinite(x))) else -y  # python control flow on a traced value

    report = initcheck.audit(NeedsConcrete(), jnp.ones((2, 4)), rng=0)
    verdict = fan_verdicts(report)["Dense_0/kernel"]
    assert verdict.status == "skip" and "could not be traced" in verdict.message
    assert report.signal is None and "could not be traced" in report.signal_unavailable


def _uses(fn, w, x):
    closed = jax.make_jaxpr(fn)(w, x)
    return _contractions.find_uses(closed, {0: "w"})


def test_the_parameter_is_followed_through_layout_ops_and_every_sub_jaxpr():
    w, x = jnp.ones((16, 4, 8)), jnp.ones((2, 16))

    @jax.custom_vjp
    def matmul(x, w):
        return x @ w

    matmul.defvjp(lambda x, w: (x @ w, (x, w)), lambda res, g: (g @ res[1].T, res[0].T @ g))

    @jax.custom_jvp
    def scaled(w):
        return w * 2.0

    scaled.defjvp(lambda primals, tangents: (scaled(primals[0]), tangents[0] * 2.0))

    def forward(w, x):
        flat = jax.jit(lambda w: w.reshape(16, 32).astype(jnp.bfloat16))(w)  # jit, reshape, convert
        a = jax.checkpoint(lambda x, f: x @ f.astype(jnp.float32))(x, flat)  # remat
        b = matmul(x, scaled(flat.astype(jnp.float32)))  # custom_jvp, custom_vjp
        c = jax.lax.cond(x[0, 0] > 0, lambda: x @ flat.astype(jnp.float32), lambda: -x @ flat.astype(jnp.float32))
        d = jax.lax.while_loop(
            lambda c: c[0] < 2, lambda c: (c[0] + 1, c[1] + x @ flat.astype(jnp.float32)), (0, jnp.zeros((2, 32)))
        )[1]
        e = jnp.einsum("bo,io->bi", a, flat.astype(jnp.float32))  # the transposed use: contracts over (4, 8)
        return a + b + c + d, e

    found = _uses(forward, w, x)
    uses = found.contractions["w"]
    inside = {u.within for u in uses}
    assert any("checkpoint" in w or "remat2" in w for within in inside for w in within), inside
    assert any(any("custom_vjp" in w for w in within) for within in inside), inside
    assert any(any("cond branch" in w for w in within) for within in inside), inside
    assert any(any("while body" in w for w in within) for within in inside), inside
    forward_uses = [u for u in uses if u.contracted == (0,)]
    assert forward_uses and all(u.fan_in == 16 and u.kept == (1, 2) and u.fan_out == 32 for u in forward_uses)
    transposed = [u for u in uses if u.contracted == (1, 2)]
    assert transposed and transposed[0].fan_in == 32 and transposed[0].kept == (0,)


def test_a_scan_over_stacked_slices_contracts_each_slice():
    def forward(w, x):
        return jax.lax.scan(lambda h, wi: (jnp.tanh(h @ wi), None), x, w)[0]

    (use,) = _uses(forward, jnp.ones((4, 16, 16)), jnp.ones((2, 16))).contractions["w"]
    assert use.contracted == (1,) and use.kept == (2,) and use.fan_in == 16 and use.within == ("scan",)


class HeadsAttention(nn.Module):
    """Query/key/value kernels stored as (features, heads, head_dim), used by einsum."""

    in_axis: object = 0
    out_axis: object = (1, 2)

    @nn.compact
    def __call__(self, x):
        init = nn.initializers.variance_scaling(1.0, "fan_in", "normal", in_axis=self.in_axis, out_axis=self.out_axis)
        q, k, v = (self.param(name, init, (x.shape[-1], 4, 8)) for name in ("query", "key", "value"))
        q, k, v = (jnp.einsum("btf,fhd->bthd", x, w) for w in (q, k, v))
        attended = jax.nn.dot_product_attention(q, k, v)
        out = self.param("out", nn.initializers.variance_scaling(1.0, "fan_in", "normal", in_axis=(0, 1)), (4, 8, 32))
        return jnp.einsum("bthd,hdf->btf", attended, out)


def test_heads_kernels_with_the_wrong_axes_named_fail_and_the_right_ones_pass():
    x = jnp.ones((2, 5, 32))
    right = fan_verdicts(initcheck.audit(HeadsAttention(), x, rng=0))
    assert {p: v.status for p, v in right.items()} == dict.fromkeys(["query", "key", "value", "out"], "pass")
    wrong = fan_verdicts(initcheck.audit(HeadsAttention(in_axis=-2, out_axis=-1), x, rng=0))
    assert {p: v.status for p, v in wrong.items() if p != "out"} == dict.fromkeys(["query", "key", "value"], "fail")
    assert "contracts over its axis 0 (32) but the law divides by 128" in wrong["query"].message
    assert "output variance x0.25" in wrong["query"].message


class TorchConv(nn.Module):
    """A convolution kernel stored OIHW (PyTorch's layout), run by lax.conv_general_dilated."""

    in_axis: int = -2
    out_axis: int = -1

    @nn.compact
    def __call__(self, x):
        init = nn.initializers.variance_scaling(2.0, "fan_in", "normal", in_axis=self.in_axis, out_axis=self.out_axis)
        w = self.param("weight", init, (16, x.shape[1], 3, 3))
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NCHW", "OIHW", "NCHW"))


def test_a_pytorch_layout_convolution_with_jax_axes_fails_and_with_its_own_axes_passes():
    x = jnp.ones((2, 8, 10, 10))
    wrong = fan_verdicts(initcheck.audit(TorchConv(), x, rng=0))["weight"]
    assert wrong.status == "fail"
    assert "conv, kernel OIHW (3x3 window)" in wrong.message and "contracts over its axes 1, 2, 3 (72)" in wrong.message
    assert "the law divides by 384" in wrong.message and "output variance x0.1875" in wrong.message
    right = fan_verdicts(initcheck.audit(TorchConv(in_axis=1, out_axis=0), x, rng=0))["weight"]
    assert right.status == "pass", right.message


class TiedAutoencoder(nn.Module):
    @nn.compact
    def __call__(self, x):
        w = self.param("w", nn.initializers.lecun_normal(), (x.shape[-1], 32))
        return jnp.tanh(x @ w) @ w.T


def test_a_parameter_used_by_two_contractions_is_checked_in_each():
    verdict = fan_verdicts(initcheck.audit(TiedAutoencoder(), jnp.ones((2, 16)), rng=0))["w"]
    assert verdict.status == "fail" and verdict.n == 2
    assert "`ab,bc->ac` contracts over its axis 1 (32) but the law divides by 16" in verdict.message
    assert "axis 0 (16) but" not in verdict.message  # the encoder's use holds


class BatchedProjection(nnx.Module):
    """An nnx.LinearGeneral with a batch axis: its default lecun_normal counts the batch in fan_in,
    so each of the 4 kernels has a variance 4 times too small for the 8 inputs it contracts over."""

    def __init__(self, *, rngs: nnx.Rngs):
        self.proj = nnx.LinearGeneral(in_features=(4, 8), out_features=16, axis=(-2, -1), batch_axis={0: 4}, rngs=rngs)

    def __call__(self, x):
        return self.proj(x)


def test_fans_that_could_not_be_checked_make_the_report_partial_with_the_fix():
    partial = initcheck.audit(BatchedProjection, rng=0)
    assert partial.result == "partial", partial
    (gap,) = [g for g in partial.coverage.gaps if g.startswith("fans not checked")]
    assert "proj/kernel" in gap and "call_args=(x,)" in gap
    checked = initcheck.audit(BatchedProjection, rng=0, call_args=(jnp.ones((4, 2, 4, 8)),))
    assert fan_verdicts(checked)["proj/kernel"].status == "fail", checked.failure_text()


def haiku_classifier(x, is_training):
    x = jax.nn.relu(hk.Linear(32)(x))
    if is_training:  # a Python bool, as Haiku's examples pass it
        x = hk.dropout(hk.next_rng_key(), 0.1, x)
    return hk.Linear(10)(x)


class EquinoxDropoutMLP(eqx.Module):
    """Called as ``model(x, inference, key)``, the way Equinox's examples call their dropout models."""

    linear: eqx.nn.Linear
    dropout: eqx.nn.Dropout

    def __init__(self, key):
        self.linear, self.dropout = eqx.nn.Linear(8, 4, key=key), eqx.nn.Dropout(0.1)

    def __call__(self, x, inference, key):
        return self.dropout(self.linear(x), inference=inference, key=key)


class SyncBatchNormNet(nn.Module):
    """Flax's imagenet ResNet style: BatchNorm over the devices of a pmap (axis_name="batch"),
    then a head that flattens each example (the batch axis must reach it whole)."""

    @nn.compact
    def __call__(self, x, train: bool = True):
        x = nn.Conv(8, (3, 3), use_bias=False)(x)
        x = nn.BatchNorm(use_running_average=not train, axis_name="batch")(x)
        return nn.Dense(4)(nn.relu(x).reshape((x.shape[0], -1)))


@pytest.mark.parametrize(
    "model, inputs, options, kernels",
    [
        (hk.transform(haiku_classifier), (jnp.ones((2, 16)), True), {}, ["linear/w", "linear_1/w"]),
        (
            EquinoxDropoutMLP,
            (),
            {"call_args": (jnp.ones(8), False, jax.random.key(1))},
            ["linear/weight"],
        ),
        (
            SyncBatchNormNet(),
            (jnp.ones((2, 8, 8, 3)),),
            {"call_kwargs": {"train": True}},
            ["Conv_0/kernel", "Dense_0/kernel"],
        ),
    ],
    ids=["haiku-bool-flag", "equinox-bool-and-key", "linen-batchnorm-axis-name"],
)
def test_forward_passes_with_python_flags_and_named_axes_are_traced(model, inputs, options, kernels):
    report = initcheck.audit(model, *inputs, rng=0, **options)
    fans = fan_verdicts(report)
    assert all(fans[k].status == "pass" for k in kernels), (fans, report.coverage.gaps)
    assert report.result == "pass", report.coverage


# A stacked value (an ensemble's members, a scan's layers) is one kernel per slice: vmap contracts
# the whole stack in one dot_general, its member axis a batch axis (an input mapped with the members)
# or a free axis (an input broadcast to every member), and neither is a fan.
GLOROT = nn.initializers.glorot_uniform()
WRONG_IN_AXIS = nn.initializers.variance_scaling(1.0, "fan_in", "normal", in_axis=-1, out_axis=-2)  # (4, 8): in is 0
INPUTS = {"broadcast": (None, jnp.ones((3, 4))), "mapped": (0, jnp.ones((2, 3, 4)))}


def linen_ensemble(init, in_axes, layer=nn.Dense, *args):
    members = nn.vmap(
        layer, variable_axes={"params": 0}, split_rngs={"params": True}, in_axes=in_axes, out_axes=0, axis_size=2
    )
    return members(*args or (8,), kernel_init=init)


class NnxEnsemble(nnx.Module):
    """Two nnx.Linear members made by nnx.vmap over split streams, called on an input broadcast to
    both (``in_axes=None``) or mapped with them (``in_axes=0``)."""

    def __init__(self, init, in_axes, *, rngs: nnx.Rngs):
        @nnx.split_rngs(splits=2)
        @nnx.vmap(in_axes=(0,))
        def make(rngs):
            return nnx.Linear(4, 8, kernel_init=init, rngs=rngs)

        self.members = make(rngs)
        self.in_axes = in_axes

    def __call__(self, x):
        return nnx.vmap(lambda m, x: m(x), in_axes=(0, self.in_axes))(self.members, x)


def ensemble_kernel(framework, init, inputs):
    in_axes, x = INPUTS[inputs]
    if framework == "linen":
        return fan_verdicts(initcheck.audit(linen_ensemble(init, in_axes), x, rng=0, properties=[FAN]))["kernel"]
    report = initcheck.audit(NnxEnsemble, init, in_axes, rng=0, call_args=(x,), properties=[FAN])
    return fan_verdicts(report)["members/kernel"]


@pytest.mark.parametrize("inputs", INPUTS)
@pytest.mark.parametrize(
    "framework, init",
    [
        ("linen", GLOROT),
        ("linen", nn.initializers.lecun_normal()),
        ("linen", nn.initializers.variance_scaling(1.0, "fan_out", "normal")),
        ("nnx", GLOROT),
    ],
    ids=["linen-glorot", "linen-lecun", "linen-fan_out", "nnx-glorot"],
)
def test_an_ensembles_member_axis_counts_in_neither_fan(framework, init, inputs):
    kernel = ensemble_kernel(framework, init, inputs)
    assert kernel.status == "pass", kernel.message
    assert "contracts over its axis 1 (4), keeps its axis 2 (8), one kernel per slice of its stacked axis 0" in (
        kernel.message
    )


@pytest.mark.parametrize("inputs", INPUTS)
@pytest.mark.parametrize("framework", ["linen", "nnx"])
def test_an_ensemble_whose_law_divides_by_the_wrong_fan_still_fails(framework, inputs):
    kernel = ensemble_kernel(framework, WRONG_IN_AXIS, inputs)
    assert kernel.status == "fail"
    assert "contracts over its axis 1 (4) but the law divides by 8 (fan_in of (4, 8)): output variance x0.5" in (
        kernel.message
    )
    assert "counts its batch" not in kernel.message  # the member axis is no batch the law counts


@pytest.mark.parametrize("inputs", INPUTS)
def test_a_convolution_ensemble_folds_its_members_into_out_features_and_passes(inputs):
    in_axes, x = {"broadcast": (None, jnp.ones((1, 6, 6, 3))), "mapped": (0, jnp.ones((2, 1, 6, 6, 3)))}[inputs]
    model = linen_ensemble(GLOROT, in_axes, nn.Conv, 8, (3, 3))
    kernel = fan_verdicts(initcheck.audit(model, x, rng=0, properties=[FAN]))["kernel"]
    assert kernel.status == "pass", kernel.message
    assert "(27), keeps its axis 4 (72), one kernel per slice of its stacked axis 0: fan_avg 49.5" in kernel.message


def test_stack_axes_merged_into_a_kernels_axis_are_left_out_of_its_fan():
    def fused(w, x):  # the members' kernels side by side: one (4, 2 * 8) matmul
        return x @ w.transpose(1, 0, 2).reshape(4, 16)

    closed = jax.make_jaxpr(fused)(jnp.ones((2, 4, 8)), jnp.ones((3, 4)))
    (use,) = _contractions.find_uses(closed, {0: "w"}, {"w": (0,)}).contractions["w"]
    assert (use.contracted, use.kept, use.stacked, use.fan_in, use.fan_out) == ((1,), (2,), (0,), 4, 8)
    (unstacked,) = _contractions.find_uses(closed, {0: "w"}).contractions["w"]
    assert unstacked.kept == (0, 2) and unstacked.fan_out == 16
