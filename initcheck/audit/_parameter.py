"""One parameter of an audited model: its value, its declared initializer, the key initcheck
derives for it, and what the initializer gives on that key."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from initcheck import laws


@dataclasses.dataclass
class Parameter:
    path: str                     # e.g. "Dense_0/kernel", "mlp/~/linear_0/w"
    value: Any                    # the framework's value (an array)
    declared: Callable | None     # the declared initializer, as the framework called it
    expected: Any = None          # ``declared`` applied to the derived key(s); None if not computable
    key: Any = None               # the derived key (None: the initializer draws no key)
    derivation: str = ""          # how the key was derived, in words
    problem: str | None = None    # why the derivation does not hold, found while recording
    law: laws.Law | None = None   # the law the declared initializer promises (None: unknown)
    hint: str = ""                # context for a failing scale (e.g. how the layer computes its fan)
    underived: str = ""           # why initcheck cannot derive its key (the other checks still run)
    unaudited: str = ""           # why this parameter cannot be audited at all (e.g. unknown initializer)

    @property
    def array(self) -> np.ndarray:
        return np.asarray(self.value)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(np.shape(self.value))

    @property
    def dtype(self) -> np.dtype:
        return np.asarray(self.value).dtype
