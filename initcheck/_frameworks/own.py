"""initcheck's own initializers (``initcheck.inits``) in the catalog, each with the law it declares
(``__initcheck_law__``)."""

from __future__ import annotations

import initcheck.strategies as strategies  # (installed from strategies/: mypy reads it as Any)
from initcheck import inits
from initcheck._entries import CatalogEntry, complex_dtypes, real_dtypes


def catalog_entries() -> list[CatalogEntry]:
    real = real_dtypes()
    builds = [
        (
            "variance_scaling(1.0, 'fan_in', 'truncated_normal')",
            inits.variance_scaling(1.0, "fan_in", "truncated_normal"),
            real + complex_dtypes(),
        ),
        (
            "variance_scaling(2.0, 'fan_avg', 'uniform')",
            inits.variance_scaling(2.0, "fan_avg", "uniform"),
            real + complex_dtypes(),
        ),
        (
            "variance_scaling(1.0, 'fan_out', 'normal')",
            inits.variance_scaling(1.0, "fan_out", "normal"),
            real + complex_dtypes(),
        ),
        ("kaiming_uniform()", inits.kaiming_uniform(), real),
        ("kaiming_normal()", inits.kaiming_normal(), real),
        ("xavier_uniform()", inits.xavier_uniform(), real),
        ("xavier_normal()", inits.xavier_normal(), real),
        ("torch_default_weight()", inits.torch_default_weight(), real),
        ("torch_default_bias(64)", inits.torch_default_bias(64), real),
        ("trunc_normal()", inits.trunc_normal(), real),
        ("scaled_normal(1.0)", inits.scaled_normal(1.0), real),
        ("threshold_uniform()", inits.threshold_uniform(), real),
        ("sparse(0.1)", inits.sparse(0.1), real),
        ("dirac()", inits.dirac(), real),
        ("eye()", inits.eye(), real),
        ("keras_default()", inits.keras_default(), real),
        ("keras_embedding()", inits.keras_embedding(), real),
        ("mxnet_default()", inits.mxnet_default(), real),
        ("normal(0.02)", inits.normal(0.02), real),
        ("uniform(-0.1, 0.1)", inits.uniform(-0.1, 0.1), real),
    ]
    return [
        CatalogEntry(
            f"initcheck.inits.{name}",
            "initcheck",
            init,
            init.__initcheck_law__,
            dtypes=dtypes,
            configurations=strategies.initcheck_initializers(names=[name.split("(")[0]]),
        )
        for name, init, dtypes in builds
    ]
