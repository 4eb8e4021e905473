"""What every property gets: the initializer, the law, one case, the profile, and the shared sample."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from initcheck import _dtypes
from initcheck import _sampler as sampler
from initcheck._profiles import Profile
from initcheck._stats import TestResult
from initcheck._verdict import ERROR, FAIL, PASS, SKIP, Case, Verdict, import_text, literal_text, unavailable_text
from initcheck.laws import Law


class NotApplicable(Exception):
    """The property does not apply to this law or case; the message says why."""


@dataclasses.dataclass
class CaseContext:
    init: Callable[..., Any]
    label: str
    law: Law
    shape: tuple[int, ...]
    dtype: np.dtype
    profile: Profile
    seed: int
    _drawn: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)
    refused_shapes: list = dataclasses.field(default_factory=list)  # given shapes the law refuses: errors cases
    origin: str | None = None  # Python that defines ``init`` and ``law`` (reproduction snippets run as printed)
    eager_dtype: str | None = None  # the one dtype whose cases call the initializer eagerly (None: every dtype)
    given: Any = None  # the initializer as given to check (before adapting): imported by snippets without origin

    @property
    def eager(self) -> bool:
        """Whether this case calls the initializer eagerly (``contract``, ``determinism``): every
        case, or only the cases of ``eager_dtype`` (a catalog run under ``ci``)."""
        return self.eager_dtype is None or self.eager_dtype == self.dtype_name

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def dtype_name(self) -> str:
        return self.dtype.name

    def case_id(self, name: str) -> str:
        return f"{name}|{self.shape}|{self.dtype_name}"

    def case(self, name: str) -> Case:
        return Case(self.shape, self.dtype_name, f"fold_in(PRNGKey({self.seed}), crc32({self.case_id(name)!r}))")

    def call(self, key):
        return self.init(key, self.shape, self.dtype)

    def jitted(self, key):
        """``init(key, shape, dtype)`` under ``jax.jit``, through the case's one compilation,
        ``jit(vmap(init))`` over a batch of copies of ``key``: checking jit compiles nothing more."""
        keys = np.repeat(np.asarray(key)[None], self.batch, axis=0)
        out = sampler.batched(self.init, self.shape, self.dtype)(keys)
        if isinstance(out, jax.Array):  # the first draw, taken on the host: indexing on the device compiles
            return jax.device_put(np.asarray(out)[0])
        return out[0]

    @functools.cached_property
    def element_law(self):
        return self.law.element_law(self.shape, self.dtype)

    @functools.cached_property
    def batch(self) -> int:
        """Draws per compiled call for this case: one compilation serves every property."""
        return sampler.batch_size(
            self.shape, self.profile.chunk_elements, sampler.draws_for(self.profile.n, self.shape)
        )

    def draw(self, keys) -> np.ndarray:
        return sampler.draw(self.init, self.shape, self.dtype, keys, batch=self.batch)

    def draws(self, name: str, count: int) -> np.ndarray:
        """``count`` draws with the keys of case ``name`` (drawn once, shared by the properties)."""
        if (name, count) not in self._drawn:
            self._drawn[name, count] = self.draw(sampler.case_keys(self.seed, self.case_id(name), count))
        return self._drawn[name, count]

    @functools.cached_property
    def sample(self) -> np.ndarray:
        """The pooled sample shared by the statistical properties, shape (K, *shape), K draws making
        at least ``profile.n`` values."""
        return self.draws("sample", sampler.draws_for(self.profile.n, self.shape))

    @functools.cached_property
    def pooled(self) -> np.ndarray:
        """The draws with derived keys that the properties already make: the pooled sample for
        i.i.d. laws, the ``profile.haar_draws`` draws of ``structure`` for orthogonal ones."""
        return self.sample if self.law.iid else self.draws("structure", self.profile.haar_draws)

    @functools.cached_property
    def sample64(self) -> np.ndarray:
        """The sample the statistical properties test, in float64: every draw, or, when one draw
        alone holds more than ``2 n`` values (a large shape), a window of each of a few
        (``sampler.windowed``; ``bounds`` and ``distribution`` count what is exact over them all)."""
        return _dtypes.to_float64(sampler.windowed(self.sample, self.profile.n))

    @functools.cached_property
    def snippet_setup(self) -> tuple[str, str]:
        """(setup, law) of the reproduction snippets: Python that defines `init` (`origin`, else
        the import of the initializer from the module that holds it), and the law's expression
        (`law` where the setup defines it, else the law's `repr`). What cannot be rebuilt so is
        said, and stops the snippet (`unavailable_text`)."""
        if self.origin:
            return f"import initcheck\n{self.origin}\n", "law"
        how = (
            "bind it at the top level of an importable module, or give initcheck.check origin= "
            "(Python that defines init and law)"
        )
        setup = "import scipy.stats, jax.numpy as jnp, initcheck\nfrom initcheck.laws import *\n"
        init = import_text(self.given, "init") if self.given is not None else None
        if init is not None and getattr(self.given, "__initcheck_law__", None) is self.law:
            return f"{setup}{init}\nlaw = init.__initcheck_law__\n", "law"
        if init is None:
            init = unavailable_text("init", f"the initializer {self.label}", how)
        law = literal_text(self.law)
        if law is None:
            return f"{setup}{init}\n{unavailable_text('law', repr(self.law), how)}\n", "law"
        return f"{setup}{init}\n", law

    def reproduce(self, name: str) -> str:
        setup, law = self.snippet_setup
        return (
            f"{setup}print(initcheck.check(init, {law}, shapes=[{self.shape!r}], dtypes=[{self.dtype_name!r}],\n"
            f"                      properties=[{name!r}], seed={self.seed}, profile={self.profile.name!r}))"
        )

    def verdict(
        self,
        name: str,
        result: TestResult | None,
        *,
        n: int,
        alpha: float | None = None,
        message: str = "",
        passed: bool | None = None,
        mde: float | None = None,
        plot: dict | None = None,
    ) -> Verdict:
        """A statistical verdict from ``result`` (fails when p < alpha), or a deterministic one
        (``alpha=0`` and an explicit ``passed``)."""
        alpha = self.profile.alpha if alpha is None else alpha
        if passed is None:
            assert result is not None, "a verdict without a test result says whether it passed"
            passed = result.pvalue >= alpha
        if not message:
            message = result.detail if result is not None else ""
        return Verdict(
            property=name,
            status=PASS if passed else FAIL,
            statistic=None if result is None else result.statistic,
            pvalue=None if result is None else result.pvalue,
            alpha=alpha,
            n=n,
            case=self.case(name),
            message=message,
            reproduce="" if passed else self.reproduce(name),
            mde=mde,
            plot=plot,
        )

    def skipped(self, name: str, reason: str) -> Verdict:
        return Verdict(name, SKIP, None, None, 0.0, 0, self.case(name), reason, "")

    def errored(self, name: str, reason: str, *, gated: bool = False) -> Verdict:
        return Verdict(name, ERROR, None, None, 0.0, 0, self.case(name), reason, self.reproduce(name), gated=gated)

    def failed(self, name: str, message: str, n: int = 0, statistic: float | None = None) -> Verdict:
        return Verdict(name, FAIL, statistic, None, 0.0, n, self.case(name), message, self.reproduce(name))

    def passed(self, name: str, message: str, n: int = 0) -> Verdict:
        return Verdict(name, PASS, None, None, 0.0, n, self.case(name), message, "")
