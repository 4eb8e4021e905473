"""``initcheck report``'s runner: sharing verdicts between catalog entries that are the same
function, and each worker process on its own CPUs."""

import flax.linen as nn
import jax

from initcheck import _runner
from initcheck._catalog import catalog, check_entry


def test_closures_of_the_same_code_over_equal_values_are_the_same_function():
    assert _runner.same_function(jax.nn.initializers.he_normal(), nn.initializers.he_normal())
    assert _runner.same_function(jax.nn.initializers.normal(0.5), jax.nn.initializers.normal(0.5))
    assert not _runner.same_function(jax.nn.initializers.normal(0.5), jax.nn.initializers.normal(0.25))
    assert not _runner.same_function(jax.nn.initializers.he_normal(), jax.nn.initializers.lecun_normal())
    assert not _runner.same_function(jax.nn.initializers.he_normal(), jax.nn.initializers.he_normal(in_axis=0))
    assert not _runner.same_function(jax.nn.initializers.he_normal(), lambda key, shape, dtype: None)


def test_every_flax_re_export_and_every_alias_shares_a_checked_entry_and_gets_what_its_own_check_gives():
    entries = catalog()
    chosen = [(i, e, e.dtypes) for i, e in enumerate(entries)]
    copies = _runner.duplicates(chosen)
    ids = {entries[i].id: entries[j].id for i, j in copies.items()}
    assert {e.id for e in entries if e.same_as} <= set(ids)
    assert not set(ids.values()) & set(ids), "an original is never itself a copy"
    # JAX's aliases and presets that are variance_scaling with the same arguments
    assert ids["jax.nn.initializers.kaiming_normal()"] == "jax.nn.initializers.he_normal()"
    assert (
        ids["jax.nn.initializers.variance_scaling(1.0, 'fan_avg', 'uniform')"] == "jax.nn.initializers.glorot_uniform()"
    )
    assert ids["flax.linen.initializers.xavier_uniform()"] == "jax.nn.initializers.glorot_uniform()"
    # ... but not different arguments or different laws
    assert "jax.nn.initializers.variance_scaling(1.0, 'fan_out', 'uniform')" not in ids
    assert "jax.nn.initializers.he_normal()" not in ids
    # The honest check of the claim: checking a copy itself gives exactly its original's verdicts.
    strip = lambda vs: [(v.property, v.case, v.status, v.statistic, v.pvalue) for v in vs]
    for copy_id in (
        "flax.nnx.initializers.lecun_uniform()",
        "jax.nn.initializers.variance_scaling(1.0, 'fan_avg', 'uniform')",
    ):
        copy = next(i for i in copies if entries[i].id == copy_id)
        own = check_entry(entries[copy], profile="quick", dtypes=["float32"]).report.verdicts
        shared = check_entry(entries[copies[copy]], profile="quick", dtypes=["float32"]).report.verdicts
        assert strip(own) == strip(shared), copy_id


def test_cpu_shares_are_disjoint_while_there_are_cpus_enough_and_cover_them_all():
    assert _runner.cpu_shares(2, [0, 1]) == [{0}, {1}]
    assert _runner.cpu_shares(2, [0, 1, 2, 3, 5]) == [{0, 2, 5}, {1, 3}]
    assert _runner.cpu_shares(3, [4, 7]) == [{4}, {7}, {4}]  # more workers than CPUs: one CPU each, in turn
    assert _runner.cpu_shares(1, [0, 1]) == [{0, 1}]


def test_each_worker_process_runs_on_its_own_share_of_the_cpus():
    import multiprocessing
    import os

    context = multiprocessing.get_context("spawn")
    shares, seen = context.Queue(), context.Queue()
    expected = _runner.cpu_shares(2, sorted(os.sched_getaffinity(0)))
    for share in expected:
        shares.put(share)
    workers = [context.Process(target=_report_cpus, args=(shares, seen)) for _ in expected]
    for worker in workers:
        worker.start()
    got = [seen.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(30)
    assert sorted(map(sorted, got)) == sorted(map(sorted, expected))


def _report_cpus(shares, seen):
    """A worker's set-up (``_runner._start``), then the CPUs it may run on."""
    import os

    _runner._start(["initcheck"], False, shares)
    seen.put(os.sched_getaffinity(0))
