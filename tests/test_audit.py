"""initcheck.audit on real Flax linen, Flax nnx and Haiku models.

Statistical verdicts here use the ci profile's alpha (1e-7 per verdict, Bonferroni bound printed in
each report, below 1e-5 for every model here); the fixed rng keeps them deterministic."""

from __future__ import annotations

import math

import flax
import flax.linen as nn
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import initcheck
from initcheck import laws


class LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(10)(nn.relu(nn.Dense(256)(x)))


class NnxMLP(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(128, 256, rngs=rngs)
        self.out = nnx.Linear(256, 10, rngs=rngs)


def statuses(report, prop):
    return {v.case.path: v.status for v in report.verdicts if v.property == prop}


def assert_passes(report, paths):
    assert report.passed, report.failure_text()
    assert set(statuses(report, "derivation")) == set(paths)
    assert set(statuses(report, "derivation").values()) == {"pass"}
    moments = statuses(report, "moments")
    assert {p for p, s in moments.items() if s == "pass"} == {p for p in paths if p.endswith(("kernel", "/w"))}
    assert report.false_alarm_bound < 1e-5


def test_linen_mlp_passes():
    report = initcheck.audit(LinenMLP(), jnp.ones((1, 128)), rng=0)
    assert_passes(report, ["Dense_0/kernel", "Dense_0/bias", "Dense_1/kernel", "Dense_1/bias"])
    assert "sha1(b'Dense_1\\x01')" in next(v.case.key for v in report.verdicts if v.case.path == "Dense_1/kernel")


def test_nnx_mlp_passes_for_a_class_and_a_factory():
    paths = ["hidden/kernel", "hidden/bias", "out/kernel", "out/bias"]
    assert_passes(initcheck.audit(NnxMLP, rng=0), paths)
    assert_passes(initcheck.audit(lambda rngs: NnxMLP(rngs), rng={"params": 3}), paths)
    single = initcheck.audit(nnx.Linear, 64, 32, rng=1)
    assert single.passed and set(statuses(single, "derivation")) == {"kernel", "bias"}


def test_haiku_mlp_passes():
    mlp = hk.transform(lambda x: hk.nets.MLP([256, 10])(x))
    assert_passes(
        initcheck.audit(mlp, jnp.ones((1, 128)), rng=0),
        ["mlp/~/linear_0/w", "mlp/~/linear_0/b", "mlp/~/linear_1/w", "mlp/~/linear_1/b"],
    )


class Named(nn.Module):
    inner: str

    @nn.compact
    def __call__(self, x):
        return nn.Dense(64, name=self.inner)(x)


class Colliding(nn.Module):
    @nn.compact
    def __call__(self, x):
        return Named("cdef", name="ab")(x) + Named("def", name="abc")(x)


def test_ab_cdef_vs_abc_def_fails_derivation_naming_both_paths():
    report = initcheck.audit(Colliding(), jnp.ones((1, 64)), rng=0)
    assert not report.passed
    failed = {v.case.path: v.message for v in report.verdicts if v.property == "derivation" and v.status == "fail"}
    assert set(failed) == {"ab/cdef/kernel", "abc/def/kernel", "ab/cdef/bias", "abc/def/bias"}
    assert "'abc/def/kernel'" in failed["ab/cdef/kernel"] and "'ab/cdef/kernel'" in failed["abc/def/kernel"]
    assert "flax_fix_rng_separator" in failed["ab/cdef/kernel"] and "2157" in failed["ab/cdef/kernel"]
    with flax.config.temp_flip_flag("fix_rng_separator", True):
        fixed = initcheck.audit(Colliding(), jnp.ones((1, 64)), rng=0)
    assert fixed.passed, fixed.failure_text()


class HiddenState(nn.Module):
    @nn.compact
    def __call__(self, x):
        rng = np.random.default_rng(0)

        def init(key, shape):  # ignores its key: a second call gives other values
            return jnp.asarray(rng.normal(size=shape), jnp.float32)

        return x @ self.param("w", init, (x.shape[-1], 4))


def test_an_initializer_that_ignores_its_key_fails_derivation():
    report = initcheck.audit(HiddenState(), jnp.ones((1, 3)), rng=0)
    (verdict,) = [v for v in report.verdicts if v.property == "derivation"]
    assert verdict.status == "fail" and "differs from its declared initializer" in verdict.message


@initcheck.expects(laws.Normal(0.05))
def declared_normal(key, shape, dtype=jnp.float32):
    return 0.05 * jax.random.normal(key, shape, dtype)


@initcheck.expects(laws.Normal(0.05))
def twice_too_wide(key, shape, dtype=jnp.float32):
    return 0.1 * jax.random.normal(key, shape, dtype)


@pytest.mark.parametrize("init,passes", [(declared_normal, True), (twice_too_wide, False)])
def test_user_initializers_declared_with_expects_are_checked(init, passes):
    report = initcheck.audit(nn.Dense(128, kernel_init=init), jnp.ones((1, 256)), rng=0)
    assert statuses(report, "derivation")["kernel"] == "pass"
    assert (statuses(report, "moments")["kernel"] == "pass") is passes


def test_an_undeclared_initializer_is_derived_but_its_law_is_skipped_with_the_fix():
    report = initcheck.audit(
        nn.Dense(8, kernel_init=lambda k, s, d: jax.random.normal(k, s, d)), jnp.ones((1, 4)), rng=0
    )
    assert statuses(report, "derivation")["kernel"] == "pass"
    skipped = [v for v in report.verdicts if v.case.path == "kernel" and v.property == "moments"]
    assert skipped[0].status == "skip" and "@initcheck.expects" in skipped[0].message


def test_haiku_keys_drawn_outside_initializers_are_followed():
    def f(x):
        hk.next_rng_key()  # e.g. dropout during init
        return hk.Linear(16, b_init=hk.initializers.RandomNormal(0.1))(x)

    report = initcheck.audit(hk.transform(f), jnp.ones((1, 32)), rng=0, properties=["derivation"])
    assert report.passed, report.failure_text()
    assert report.verdicts[0].case.key == "key #2 of the sequence started at rng"  # key #1 went to the model


def test_nnx_parameters_without_an_initializer_argument_are_named_not_hidden():
    class Custom(nnx.Module):
        def __init__(self, rngs):
            self.w = nnx.Param(jax.random.normal(rngs.params(), (4, 4)))

    report = initcheck.audit(Custom, rng=0)
    (verdict,) = [v for v in report.verdicts if v.property == "derivation"]
    assert verdict.status == "skip" and verdict.case.path == "w" and "*_init" in verdict.message


def penzai_like(key):
    """A factory of a framework initcheck does not know (as penzai's take ``key=``): a pytree of
    arrays, no ``equinox.Module``."""
    k1, k2 = jax.random.split(key)
    return {"linear": {"w": jax.random.normal(k1, (4, 4)), "b": jax.random.normal(k2, (4,))}}


@pytest.mark.parametrize(
    "model,match",
    [
        (3, "model=3 is not a Flax linen Module"),
        (lambda x: x, "takes no rngs= argument"),
        (lambda rngs: 3, "returned int, not an nnx.Module"),
        (penzai_like, "returned builtins.dict, which holds no equinox.Module; initcheck audits"),
    ],
)
def test_bad_models_get_clear_errors(model, match):
    with pytest.raises(TypeError, match=match):
        initcheck.audit(model, rng=0)


def test_a_factory_of_an_unknown_framework_is_refused_on_the_memory_budget_path_too(monkeypatch):
    from initcheck._audit import _budget

    monkeypatch.setattr(_budget, "IN_MEMORY_FACTOR", 10**12)
    with pytest.raises(TypeError, match="penzai_like: a factory taking key= is audited as an Equinox model"):
        initcheck.audit(penzai_like, rng=0, memory="2GB")


def test_a_built_nnx_module_is_refused_with_the_fix():
    with pytest.raises(TypeError, match="already built; pass its class"):
        initcheck.audit(nnx.Linear(2, 3, rngs=nnx.Rngs(0)))


def test_unknown_audit_property_is_refused():
    with pytest.raises(ValueError, match="do not apply to an audit"):
        initcheck.audit(LinenMLP(), jnp.ones((1, 4)), properties=["precision"])


# -- wrapped initializers, every value, coverage -----------------------------------------------------


def _kernel_law(report, path="kernel"):
    return next(v for v in report.verdicts if v.case.path == path and v.property == "moments")


@pytest.mark.parametrize(
    "wrap",
    [
        lambda init: nn.with_logical_partitioning(init, ("embed", "mlp")),
        lambda init: nn.with_partitioning(init, ("model", None)),
        lambda init: __import__("functools").partial(init, out_sharding=None),
    ],
    ids=["logical-partitioning", "partitioning", "partial"],
)
def test_flax_metadata_wrappers_and_law_keeping_partials_keep_the_law(wrap):
    report = initcheck.audit(nn.Dense(64, kernel_init=wrap(nn.initializers.lecun_normal())), jnp.ones((1, 128)), rng=0)
    assert report.result == "pass", report.failure_text() + str(report.coverage)
    assert _kernel_law(report).status == "pass"


def test_nnx_wrappers_and_modified_orthogonal_have_laws():
    class Layer(nnx.Module):
        def __init__(self, rngs):
            self.linear = nnx.Linear(
                16, 32, kernel_init=nnx.with_metadata(nnx.initializers.normal(0.02), note="x"), rngs=rngs
            )
            self.cell = nnx.LSTMCell(8, 16, rngs=rngs)  # recurrent kernels: nnx's modified_orthogonal

        def __call__(self, x):
            return self.linear(x)

    report = initcheck.audit(Layer, rng=0, call_args=(jnp.ones((2, 16)),))
    assert report.result == "pass", report.failure_text() + str(report.coverage)
    structure = {v.case.path: v for v in report.verdicts if v.property == "structure"}
    assert structure["cell/hf/kernel"].status == "pass" and "orthogonal" in structure["cell/hf/kernel"].message


def test_an_unknown_wrapper_is_named_truly_and_makes_the_model_partial():
    import functools

    base = nn.initializers.lecun_normal()

    @functools.wraps(base)
    def doubled(key, shape, dtype=jnp.float32):
        return 2 * base(key, shape, dtype)

    report = initcheck.audit(nn.Dense(8, kernel_init=doubled), jnp.ones((1, 4)), rng=0)
    assert report.passed and report.result == "partial"
    (gap,) = report.coverage.gaps
    assert gap.startswith("kernel (params): initcheck does not know the law of a wrapper of ")
    assert "which may change its values" in gap and "@initcheck.expects" in gap
    assert "PARTIAL" in str(report)


def test_initializers_wrapped_by_a_function_of_the_model_take_the_law_of_the_known_one_inside():
    """t5x/MaxText: nd_dense_init builds variance_scaling with its axes at call time."""

    def nd_dense_init(scale, mode, distribution):
        def init_fn(key, shape, dtype, in_axis, out_axis):
            return jax.nn.initializers.variance_scaling(scale, mode, distribution, in_axis, out_axis)(key, shape, dtype)

        return init_fn

    class Proj(nn.Module):
        @nn.compact
        def __call__(self, x):
            kernel = self.param(
                "kernel", nd_dense_init(1.0, "fan_in", "normal"), (x.shape[-1], 4, 16), jnp.float32, (0,), (1, 2)
            )
            return jnp.einsum("bi,ihd->bhd", x, kernel)

    report = initcheck.audit(Proj(), jnp.ones((1, 64)), rng=0)
    assert report.result == "pass", report.failure_text() + str(report.coverage)
    assert "fan_in = 64" not in _kernel_law(report).message  # the fans the call used: in (0,), out (1, 2)


def test_values_of_other_collections_and_random_state_are_audited():
    class Model(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.BatchNorm(use_running_average=False)(nn.Dense(8)(x))
            proj = self.variable("constants", "proj", nn.initializers.normal(1.0), self.make_rng("params"), (8, 16))
            self.sow("intermediates", "features", x)
            return x @ proj.value

    report = initcheck.audit(Model(), jnp.ones((4, 8)), rng=0)
    assert report.result == "pass", report.failure_text() + str(report.coverage)
    derivation = {v.case.path: v for v in report.verdicts if v.property == "derivation"}
    assert set(derivation) == {
        "Dense_0/kernel",
        "Dense_0/bias",
        "BatchNorm_0/scale",
        "BatchNorm_0/bias",
        "BatchNorm_0/mean",
        "BatchNorm_0/var",
        "proj",
    }  # sown activations are not values
    assert "handed to its init function" in derivation["proj"].message
    assert (derivation["proj"].case.collection, derivation["BatchNorm_0/mean"].case.collection) == (
        "constants",
        "batch_stats",
    )  # every verdict names its collection
    assert "[batch_stats]" in str(derivation["BatchNorm_0/mean"].case)
    structure = {v.case.path: v for v in report.verdicts if v.property == "structure"}
    assert structure["BatchNorm_0/var"].status == "pass"
    assert _kernel_law(report, "proj").status == "pass"


def test_haiku_state_made_by_initializers_is_audited():
    def f(x):
        return hk.nets.VectorQuantizerEMA(embedding_dim=8, num_embeddings=16, commitment_cost=0.25, decay=0.99)(
            x, is_training=True
        )["quantize"]

    report = initcheck.audit(hk.transform_with_state(f), jnp.ones((4, 8)), rng=0)
    assert report.result == "pass", report.failure_text() + str(report.coverage)
    embeddings = {v.property: v for v in report.verdicts if v.case.path.endswith("/embeddings")}
    assert embeddings["derivation"].status == "pass" and embeddings["moments"].status == "pass"


def test_a_model_with_only_unknown_values_is_partial_not_a_pass_on_zero_verdicts():
    class Custom(nnx.Module):
        def __init__(self, rngs):
            self.w = nnx.Param(jax.random.normal(rngs.params(), (4, 4)))

    report = initcheck.audit(Custom, rng=0)
    assert report.passed and report.result == "partial" and report.coverage.covered == 0
    assert "CONFORMS PARTIALLY" in str(report)


class Activation(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.gelu(x)


@pytest.mark.parametrize(
    "model, inputs",
    [
        (Activation(), (jnp.ones((2, 4)),)),
        (hk.transform(lambda x: jax.nn.relu(x)), (jnp.ones((2, 4)),)),
        (lambda rngs: nnx.Sequential(nnx.relu), ()),
    ],
    ids=["linen", "haiku", "nnx"],
)
def test_a_model_that_makes_no_values_is_partial_not_a_pass(model, inputs):
    report = initcheck.audit(model, *inputs, rng=0)
    assert report.result == "partial" and not report.coverage.complete, report
    assert "coverage 0/0 values (0%)" in str(report.coverage)
    assert any("nothing was audited" in gap for gap in report.coverage.gaps)


def test_a_kernel_stored_as_a_transformed_view_is_named_not_failed():
    """nn.WeightNorm and nn.SpectralNorm keep the normalized view of the kernel (nn.map_variables
    with init=True): not what the initializer drew, and not a failure."""

    class Normed(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.WeightNorm(nn.Dense(8))(x)
            return nn.SpectralNorm(nn.Dense(8))(x, update_stats=True)

    report = initcheck.audit(Normed(), jnp.ones((2, 16)), rng=0)
    assert report.passed and report.result == "partial", report.failure_text()
    assert [g.split(" (")[0] for g in report.coverage.gaps] == ["Dense_0/kernel", "Dense_1/kernel"]
    assert all("nn.map_variables" in g for g in report.coverage.gaps)
    u = {v.property: v for v in report.verdicts if v.case.path.endswith("kernel/u")}  # SpectralNorm's random vector
    assert u["derivation"].status == "pass" and "audited as created" in u["derivation"].message


def test_haiku_cond_at_init_uses_the_branch_whose_keys_were_drawn():
    def f(x):
        return hk.cond(True, lambda y: hk.Linear(4, name="a")(y), lambda y: hk.Linear(4, name="a")(y) * 2, x)

    report = initcheck.audit(hk.transform(f), jnp.ones((2, 8)), rng=0, properties=["derivation"])
    assert report.result == "pass", report.failure_text() + str(report.coverage)


def test_a_lift_whose_keys_are_not_modelled_is_a_named_skip_never_a_guess():
    class Branchy(nn.Module):
        def setup(self):
            self.dense = nn.Dense(4)

        def __call__(self, x):
            return nn.cond(True, lambda m, x: m.dense(x), lambda m, x: -m.dense(x), self, x)

    report = initcheck.audit(Branchy(), jnp.ones((2, 8)), rng=0)
    assert report.passed and report.result == "partial"
    assert {v.status for v in report.verdicts} == {"skip"}
    assert all("created inside nn.cond, whose keys initcheck does not model" in v.message for v in report.verdicts)


# -- initcheck.Model, keyword inputs, intended laws ---------------------------------------------------


def test_an_intended_law_that_the_declared_initializer_does_not_promise_fails_naming_both():
    model = nn.Sequential(
        [
            nn.Dense(8, kernel_init=nn.initializers.xavier_uniform()),
            nn.relu,
            nn.Dense(1, kernel_init=nn.initializers.constant(41.0)),
        ]
    )
    report = initcheck.audit(model, jnp.ones((2, 16)), expect={"**/layers_2/kernel": laws.Constant(42.0)})
    (intent,) = [v for v in report.verdicts if v.property == "intent"]
    assert intent.status == "fail" and intent.case.path == "layers_2/kernel"
    assert "promises Constant(41.0), but the intended law is Constant(42.0)" in intent.message
    structure = next(v for v in report.verdicts if v.property == "structure" and v.case.path == "layers_2/kernel")
    assert structure.status == "fail"  # the values are tested against the intended law too
    right = initcheck.audit(
        model,
        jnp.ones((2, 16)),
        expect={"layers_0/kernel": laws.VarianceScaling(1.0, "fan_avg", "uniform"), "**/bias": laws.Constant(0.0)},
    )
    assert right.result == "pass" and sum(v.property == "intent" for v in right.verdicts) == 3


class Embedder(nn.Module):
    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(1000, 64, name="embedding")(
            tokens
        )  # Flax's default: variance_scaling(1, fan_in, normal, out_axis=0)
        return nn.Dense(64, kernel_init=nn.initializers.normal(0.02 / math.sqrt(8)), name="proj")(x)


def test_intended_laws_are_compared_as_distributions_on_the_value_s_shape():
    """The same law written another way is the intended law: a float that differs in its last bit,
    a variance scaling that is a normal of std 1/8 on a (1000, 64) table; a law 1e-4 away is not."""
    tokens = jnp.zeros((1, 4), jnp.int32)
    same = {"embedding/embedding": laws.Normal(0.125), "proj/kernel": laws.Normal(0.02 * 8**-0.5)}
    report = initcheck.audit(Embedder(), tokens, rng=0, expect=same)
    intents = [v for v in report.verdicts if v.property == "intent"]
    assert len(intents) == 2 and all(v.status == "pass" for v in intents), report.failure_text()
    apart = initcheck.audit(Embedder(), tokens, rng=0, expect={"proj/kernel": laws.Normal(0.02 * 8**-0.5 * 1.0001)})
    (intent,) = [v for v in apart.verdicts if v.property == "intent"]
    assert intent.status == "fail", intent


def test_an_intended_law_completes_the_coverage_of_an_unknown_initializer():
    def handmade(key, shape, dtype=jnp.float32):
        return 0.02 * jax.random.normal(key, shape, dtype)

    model = nn.Dense(64, kernel_init=handmade)
    assert initcheck.audit(model, jnp.ones((1, 128))).result == "partial"
    report = initcheck.audit(model, jnp.ones((1, 128)), expect={"kernel": laws.Normal(0.02)})
    assert report.result == "pass" and report.coverage.complete
    assert next(v for v in report.verdicts if v.property == "moments" and v.case.path == "kernel").status == "pass"


@pytest.mark.parametrize(
    "pattern,matches",
    [
        ("**/bias", ["bias", "Dense_0/bias", "a/b/bias"]),
        ("*/kernel", ["Dense_0/kernel"]),
        ("Dense_?/kernel", ["Dense_0/kernel"]),
        ("a/**/bias", ["a/b/bias"]),
        ("**", ["bias", "Dense_0/bias", "Dense_0/kernel", "a/b/bias"]),
    ],
)
def test_expect_patterns_are_path_globs(pattern, matches):
    from initcheck._record import pattern_regex

    paths = ["bias", "Dense_0/bias", "Dense_0/kernel", "a/b/bias"]
    assert [p for p in paths if pattern_regex(pattern).match(p)] == matches


@pytest.mark.parametrize(
    "expect,error,text",
    [
        ({"**/layer_2/kernel": laws.Constant(0.0)}, ValueError, "matches none of the model's values"),
        ({"": laws.Constant(0.0)}, TypeError, "must be a non-empty path glob"),
        ({"**/kernel": "normal"}, TypeError, "expect['**/kernel']"),
        ([("kernel", laws.Constant(0.0))], TypeError, "must be a dict of path patterns to laws"),
    ],
)
def test_bad_expect_is_refused_with_the_fix(expect, error, text):
    with pytest.raises(error, match=__import__("re").escape(text)):
        initcheck.audit(nn.Dense(4), jnp.ones((1, 4)), expect=expect)


def test_models_with_keyword_inputs_and_rng_dicts_in_every_framework():
    class Tagger(nn.Module):
        @nn.compact
        def __call__(self, *, inputs, train):
            x = nn.Dense(16)(inputs)
            return nn.Dropout(0.5, deterministic=not train)(x)

    def haiku_net(x, *, width):
        return hk.Linear(width)(x)

    class NnxNet(nnx.Module):
        def __init__(self, din, *, dout, rngs):
            self.linear = nnx.Linear(din, dout, rngs=rngs)

        def __call__(self, x):
            return self.linear(x)

    for target in (
        initcheck.Model(Tagger(), kwargs={"inputs": jnp.ones((2, 8)), "train": True}, rng={"params": 0, "dropout": 1}),
        initcheck.Model(hk.transform(haiku_net), (jnp.ones((2, 8)),), {"width": 4}, rng=jax.random.PRNGKey(3)),
        initcheck.Model(NnxNet, (8,), {"dout": 4}, rng={"params": 2}, call_args=(jnp.ones((2, 8)),)),
    ):
        report = initcheck.audit(target)
        assert report.result == "pass", report.failure_text() + str(report.coverage)
    assert initcheck.Model.of((Tagger(), 1, 2)).args == (1, 2) and initcheck.Model.of(Tagger()).args == ()
    with pytest.raises(TypeError, match="carries its inputs"):
        initcheck.audit(initcheck.Model(Tagger()), jnp.ones(1))


class GemmaRMSNorm(nnx.Module):
    """Flax's examples/gemma RMSNorm: its scale_init is called with an int shape, as JAX allows."""

    def __init__(self, dim: int, *, scale_init=None, rngs: nnx.Rngs):
        scale_init = scale_init or nnx.initializers.zeros_init()
        self.scale = nnx.Param(scale_init(rngs.params(), dim))

    def __call__(self, x):
        return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + 1e-6) * (1 + self.scale[...])


class GemmaBlock(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.pre_attention_norm = GemmaRMSNorm(16, rngs=rngs)
        self.proj = nnx.Linear(16, 16, rngs=rngs)

    def __call__(self, x):
        return self.proj(self.pre_attention_norm(x))


def test_an_initializer_called_with_an_int_shape_is_audited():
    report = initcheck.audit(GemmaBlock, rng=0, call_args=(jnp.ones((2, 16)),))
    assert report.result == "pass", report
    scale = {v.property: v.status for v in report.verdicts if v.case.path == "pre_attention_norm/scale"}
    assert scale["derivation"] == "pass" and report.coverage.complete, (scale, report.coverage)


ORTHOGONAL_FLAT = [  # each calls kernel_init on (in, prod(features)) and reshapes the draw
    (nn.DenseGeneral((4, 2), kernel_init=jax.nn.initializers.orthogonal()), (jnp.ones((2, 3)),), {}),
    (
        nn.MultiHeadDotProductAttention(num_heads=2, qkv_features=8, kernel_init=jax.nn.initializers.orthogonal()),
        (jnp.ones((1, 3, 8)),),
        {},
    ),
    (
        lambda rngs: nnx.LinearGeneral(3, (4, 2), kernel_init=jax.nn.initializers.orthogonal(), rngs=rngs),
        (),
        {"call_args": (jnp.ones((2, 3)),)},
    ),
    (
        lambda rngs: nnx.MultiHeadAttention(
            num_heads=2,
            in_features=8,
            qkv_features=8,
            decode=False,
            kernel_init=jax.nn.initializers.orthogonal(),
            rngs=rngs,
        ),
        (),
        {"call_args": (jnp.ones((1, 3, 8)),)},
    ),
]


@pytest.mark.parametrize(
    "model, inputs, options", ORTHOGONAL_FLAT, ids=["DenseGeneral", "MHA", "LinearGeneral", "nnx-MHA"]
)
def test_orthogonal_kernels_drawn_flat_and_reshaped_are_orthogonal_where_drawn(model, inputs, options):
    report = initcheck.audit(model, *inputs, rng=0, **options)
    structure = [v for v in report.verdicts if v.property == "structure"]
    assert structure and all(v.status == "pass" for v in structure), report.failure_text()
    assert report.result == "pass", report.failure_text()


def test_a_kernel_that_is_not_orthogonal_where_drawn_still_fails_structure():
    fake = initcheck.expects(laws.Orthogonal(1.0))(jax.nn.initializers.normal(1.0))
    report = initcheck.audit(nn.DenseGeneral((4, 2), kernel_init=fake), jnp.ones((2, 3)), rng=0)
    assert ("kernel", "structure") in {(v.case.path, v.property) for v in report.failures}, report
