"""Laws: what an initializer promises, as a function of `(shape, dtype)`.

Element-wise i.i.d. laws resolve to a `RealLaw` (a mixture of frozen scipy.stats distributions
and atoms) or, for complex dtypes, a circular `ComplexLaw`. Structured laws (orthogonal,
delta-orthogonal, identity, constant) carry their own checks. Every constructor validates its
parameters (scipy would silently return NaN): a bad value raises `TypeError` or `ValueError`
naming the parameter and the fix.

Example:
    ```python
    from initcheck import laws

    laws.Normal(0.02)
    laws.VarianceScaling(2.0, "fan_in", "truncated_normal")  # He normal
    laws.Orthogonal(scale=1.0)
    ```
"""

from __future__ import annotations

import copy
import math
import types
from collections.abc import Callable, Mapping, Sequence

import ml_dtypes
import numpy as np
from scipy import stats

from initcheck import _dtypes, _element, _fans
from initcheck._element import ComplexLaw, RealLaw

# Std of a standard normal truncated to (-2, 2): scipy.stats.truncnorm(-2, 2).std().
TRUNCATED_NORMAL_STD = float(stats.truncnorm(-2.0, 2.0).std())
# Mean of Exp(1) truncated to [0, 4]: E|z|^2 of a unit complex normal whose modulus is truncated at 2.
# Its square root, 0.96196..., is the right correction for complex truncated-normal variance scaling.
COMPLEX_TRUNCATED_MODULUS2_MEAN = float(stats.truncexpon(4.0).mean())

MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
# Named fan rules of VarianceScaling: JAX's (in_axis, out_axis, batch_axis), Haiku's
# (fan_in_axes; a fan below 1 counts as 1), and Haiku's UniformScaling (the input size is
# prod(shape[:-1])), and Equinox's recurrent cells (shape[0] over the gate count).
FAN_RULES = ("jax", "haiku", "haiku_input_size", *_fans.STACKED_GATES)
DISTRIBUTIONS = ("truncated_normal", "normal", "uniform")


def _finite(owner: str, name: str, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: {name}={value!r} must be a real number") from None
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {name}={value!r} must be finite")
    return value


def _positive(owner: str, name: str, value) -> float:
    value = _finite(owner, name, value)
    if value <= 0:
        raise ValueError(f"{owner}: {name}={value!r} must be > 0; pass a positive {name}")
    return value


ORTHO_EPS = 32  # tolerance on |QᵀQ/scale² - I| in units of the dtype's eps (measured error <= 7 eps)


def orthogonality_error(q: np.ndarray) -> float:
    """max |QᵀQ - I| over K matrices (QQᵀ for wide ones).

    Args:
        q: K matrices, shape (K, rows, cols).

    Returns:
        The largest absolute deviation of any Gram matrix from the identity.
    """
    rows, cols = q.shape[1:]
    gram = np.einsum("kri,krj->kij", q, q) if rows >= cols else np.einsum("kir,kjr->kij", q, q)
    return float(np.max(np.abs(gram - np.eye(gram.shape[1]))))


class Law:
    """Base class: what an initializer promises, with the behaviour the checks ask of it.

    Laws compare equal when they are the same law (same class and parameters: the repr, which
    rebuilds them), and hash alike. Subclasses set the class attributes below.

    Attributes:
        iid (bool): Element-wise i.i.d. (the statistical properties test the elements); otherwise
            the `structure` property decides, one draw at a time
            ([`draw_problem`][initcheck.laws.Law.draw_problem]).
        random (bool): The output depends on the key.
        exact (bool): One fixed array for every key.
        integer_ok (bool): The law applies to integer and boolean values too.
        complex_ok (bool): The law has a promise for complex dtypes too.
        refused (Mapping[str, str]): dtype name -> why an initializer keeping this law raises on it
            (see [`refusing`][initcheck.laws.Law.refusing]).
    """

    iid = True
    random = True
    exact = False
    integer_ok = False
    complex_ok = False
    refused: Mapping[str, str] = types.MappingProxyType({})  # dtype name -> why an initializer raises on it

    def _identity(self) -> object:
        """What makes two laws of this class the same law."""
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Law) and type(other) is type(self) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._identity()))

    def draw_problem(self, x: np.ndarray, shape: tuple[int, ...], dtype) -> str | None:
        """What is wrong with the structure of one output.

        Args:
            x: One output, as float64.
            shape: The shape it was drawn in.
            dtype (DTypeLike): The dtype it was drawn in.

        Returns:
            What is wrong, or None when nothing is.
        """
        return self.structure_problem(x, dtype)

    def refusing(self, dtypes: Sequence, reason: str) -> Law:
        """This law, for an initializer documented to raise on `dtypes` (e.g. no 16-bit QR).

        The `errors` property then requires that it raises there; `check` refuses those dtypes.

        Args:
            dtypes: The dtypes the initializer raises on (names, numpy or JAX types).
            reason: Why it raises there (shown in reports).

        Returns:
            A copy of this law with the refusals added.

        Raises:
            ValueError: `reason` is empty or not a string.

        Example:
            ```python
            laws.Orthogonal().refusing(["bfloat16", "float16"], "no 16-bit QR")
            ```
        """
        if not reason or not isinstance(reason, str):
            raise ValueError(f"refusing: reason={reason!r} must say why the initializer raises")
        law = copy.copy(self)
        law.refused = {**self.refused, **{_dtypes.canonical(d).name: reason for d in dtypes}}
        return law

    def matrix_dims(self, shape: Sequence[int]) -> tuple[int, int]:
        """(rows, columns) of the orthogonal matrix a structured law promises in `shape`.

        Args:
            shape: The output's shape.

        Returns:
            The matrix's (rows, columns).

        Raises:
            NotImplementedError: The law promises no orthogonal matrix.
        """
        raise NotImplementedError(f"{self!r} promises no orthogonal matrix")

    def matrix(self, x: np.ndarray, shape: Sequence[int]) -> np.ndarray:
        """One output's orthogonal matrix, over its scale (orthogonal laws).

        Args:
            x: One output.
            shape: Its shape.

        Returns:
            The matrix, divided by the law's scale.

        Raises:
            NotImplementedError: The law promises no orthogonal matrix.
        """
        raise NotImplementedError(f"{self!r} promises no orthogonal matrix")

    def without_refusals(self) -> Law:
        """This law with no documented refusals (what it promises, wherever it applies).

        Returns:
            A copy of this law without refusals.
        """
        law = copy.copy(self)
        law.refused = {}
        return law

    def structure_problem(self, x: np.ndarray, dtype) -> str | None:
        """What is wrong with one output's extra structure; checked by the `structure` property.

        For i.i.d.-marginal laws with extra structure (e.g. exactly k zeros per column).

        Args:
            x: One output, as float64.
            dtype (DTypeLike): The dtype it was drawn in.

        Returns:
            What is wrong, or None when nothing is.
        """
        return None

    has_structure = False

    def _repr(self) -> str:
        return type(self).__name__ + "()"

    def __repr__(self):
        """Python code that rebuilds the law (reproduction snippets run it)."""
        text = self._repr()
        for reason in dict.fromkeys(self.refused.values()):
            names = [d for d, r in self.refused.items() if r == reason]
            text += f".refusing({names!r}, {reason!r})"
        return text

    def element_law(self, shape: tuple[int, ...], dtype) -> RealLaw | ComplexLaw:
        """The law of one element for this case (i.i.d. and constant laws).

        Args:
            shape: The case's shape.
            dtype (DTypeLike): The case's dtype.

        Returns:
            A real law (a mixture of frozen scipy.stats distributions and atoms) or a circular
                complex law.

        Raises:
            NotImplementedError: The law is not element-wise.
        """
        raise NotImplementedError(f"{self!r} is not an element-wise law")

    def error_reason(self, shape: tuple[int, ...], dtype) -> str | None:
        """Why an initializer keeping this law must raise for `shape` in `dtype`.

        Args:
            shape: The case's shape.
            dtype (DTypeLike): The case's dtype.

        Returns:
            The reason, or None if it must not raise.
        """
        return self.refused.get(_dtypes.canonical(dtype).name)

    def diagnose(self, shape: tuple[int, ...], observed_var: float) -> str | None:
        """A likely cause when the observed variance does not match.

        Args:
            shape: The case's shape.
            observed_var: The variance observed there.

        Returns:
            The likely cause, or None.
        """
        return None

    def dependent_axes(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Axes along which the law itself makes elements dependent (`independence` skips them).

        Args:
            shape: The case's shape.

        Returns:
            The dependent axes (none by default).
        """
        return ()

    def edge_shapes(self) -> list[tuple[int, ...]]:
        """Extra shapes for the `errors` property, beyond the generic edge shapes.

        Returns:
            The shapes (none by default).
        """
        return []

    def check_dtype(self, dtype) -> None:
        name = _dtypes.canonical(dtype).name
        if name in self.refused:
            raise ValueError(
                f"dtypes: {name} is documented to raise for {self!r} ({self.refused[name]}); "
                "the errors property checks that; sample another dtype"
            )
        if _dtypes.is_complex(dtype) and not self.complex_ok:
            raise ValueError(
                f"dtypes: {_dtypes.canonical(dtype)} is complex, but {self!r} is a real law; "
                "use a real dtype or a law with a complex promise (Normal(mean=0), VarianceScaling)"
            )


class Distribution(Law):
    """Any frozen continuous scipy.stats distribution, element-wise i.i.d.

    Args:
        dist (scipy.stats.rv_continuous): A frozen continuous distribution, e.g.
            `scipy.stats.laplace(scale=0.1)`.

    Raises:
        TypeError: `dist` is not a frozen continuous scipy.stats distribution.
        ValueError: Its parameters are invalid (scipy returns NaN for it).
    """

    def __init__(self, dist):
        if not _element.is_frozen_continuous(dist):
            raise TypeError(
                f"expect={dist!r} is neither an initcheck law nor a frozen continuous scipy.stats "
                "distribution; use e.g. laws.Normal(0.02) or scipy.stats.norm(scale=0.02)"
            )
        lo, hi = dist.support()
        if np.isnan(lo) or np.isnan(hi) or np.isnan(dist.cdf(dist.median())):
            raise ValueError(
                f"expect={_element.part_name(dist)} has invalid parameters (scipy returns NaN for it); "
                "check the distribution's shape, loc and scale"
            )
        self.dist = dist

    def element_law(self, shape, dtype):
        return _element.continuous(self.dist)

    def _repr(self) -> str:
        args = [repr(float(a)) for a in self.dist.args] + [f"{k}={float(v)!r}" for k, v in self.dist.kwds.items()]
        return f"Distribution(scipy.stats.{self.dist.dist.name}({', '.join(args)}))"


class Normal(Law):
    """N(mean, std^2), element-wise i.i.d.

    For complex dtypes (mean 0): circular complex normal with E|z|^2 = std^2.

    Args:
        std: The standard deviation, > 0.
        mean: The mean; 0 for complex dtypes.

    Raises:
        TypeError: `std` or `mean` is not a real number.
        ValueError: `std` is not > 0 or a value is not finite (and, when a case is checked, a
            complex dtype with a non-zero `mean`).
    """

    complex_ok = True

    def __init__(self, std: float, mean: float = 0.0):
        self.std = _positive("Normal", "std", std)
        self.mean = _finite("Normal", "mean", mean)

    def check_dtype(self, dtype):
        super().check_dtype(dtype)
        if _dtypes.is_complex(dtype) and self.mean != 0:
            raise ValueError(f"dtypes: complex {dtype} needs Normal(mean=0), got mean={self.mean}")

    def element_law(self, shape, dtype):
        if _dtypes.is_complex(dtype):
            return ComplexLaw(_element.continuous(stats.expon(scale=self.std**2)))
        return _element.continuous(stats.norm(self.mean, self.std))

    def _repr(self) -> str:
        return f"Normal(std={self.std!r}, mean={self.mean!r})"


class Uniform(Law):
    """U[low, high), element-wise i.i.d.

    Args:
        low: The lower bound (included).
        high: The upper bound (excluded), > `low`.

    Raises:
        TypeError: A bound is not a real number.
        ValueError: A bound is not finite, or `low >= high`.
    """

    def __init__(self, low: float, high: float):
        self.low = _finite("Uniform", "low", low)
        self.high = _finite("Uniform", "high", high)
        if not self.low < self.high:
            raise ValueError(f"Uniform: low={low!r} must be < high={high!r}; swap them or widen the interval")

    def element_law(self, shape, dtype):
        return _element.continuous(stats.uniform(self.low, self.high - self.low))

    def _repr(self) -> str:
        return f"Uniform(low={self.low!r}, high={self.high!r})"


class Constant(Law):
    """Every element equals `value` (for every key), in real and complex dtypes.

    Args:
        value: The value of every element.

    Raises:
        TypeError: `value` is not a real number.
        ValueError: `value` is not finite.
    """

    iid = False
    random = False
    exact = True
    integer_ok = True
    complex_ok = True
    has_structure = True

    def __init__(self, value: float):
        self.value = _finite("Constant", "value", value)

    def expected(self, shape, dtype) -> np.ndarray:
        return np.full(shape, self.value)

    def draw_problem(self, x, shape, dtype):
        return _exact_problem(self, x, shape, dtype)

    def element_law(self, shape, dtype):
        return _element.atom(self.value)

    def _repr(self) -> str:
        return f"Constant({self.value!r})"


class TruncatedNormal(Law):
    """A normal N(mean, std^2) truncated to (mean + lower*std, mean + upper*std).

    `std` is the std of the *untruncated* normal and the bounds are in units of it (JAX and Haiku
    semantics); [`absolute`][initcheck.laws.TruncatedNormal.absolute] takes absolute bounds
    (PyTorch's `trunc_normal_`).

    Args:
        std: The std of the untruncated normal, > 0.
        lower: The lower bound, in units of `std` from `mean`.
        upper: The upper bound, in units of `std` from `mean`, > `lower`.
        mean: The mean of the untruncated normal.

    Raises:
        TypeError: A parameter is not a real number.
        ValueError: `std` is not > 0, a value is not finite, or `lower >= upper`.
    """

    def __init__(self, std: float, lower: float = -2.0, upper: float = 2.0, mean: float = 0.0):
        self.std = _positive("TruncatedNormal", "std", std)
        self.lower = _finite("TruncatedNormal", "lower", lower)
        self.upper = _finite("TruncatedNormal", "upper", upper)
        self.mean = _finite("TruncatedNormal", "mean", mean)
        if not self.lower < self.upper:
            raise ValueError(f"TruncatedNormal: lower={lower!r} must be < upper={upper!r}")

    @classmethod
    def absolute(cls, low: float, high: float, std: float = 1.0, mean: float = 0.0) -> TruncatedNormal:
        """A truncated normal with bounds as values, not in units of `std` (PyTorch semantics).

        Args:
            low: The lower bound, as a value.
            high: The upper bound, as a value.
            std: The std of the untruncated normal, > 0.
            mean: The mean of the untruncated normal.

        Returns:
            The law, with `lower = (low - mean) / std` and `upper = (high - mean) / std`.

        Raises:
            TypeError: A parameter is not a real number.
            ValueError: `std` is not > 0, a value is not finite, or `low >= high`.
        """
        std = _positive("TruncatedNormal.absolute", "std", std)
        return cls(
            std, lower=(_finite("", "low", low) - mean) / std, upper=(_finite("", "high", high) - mean) / std, mean=mean
        )

    def element_law(self, shape, dtype):
        return _element.continuous(stats.truncnorm(self.lower, self.upper, loc=self.mean, scale=self.std))

    def _repr(self) -> str:
        return f"TruncatedNormal(std={self.std!r}, lower={self.lower!r}, upper={self.upper!r}, mean={self.mean!r})"


class VarianceScaling(Law):
    """Zero-mean law with variance `scale / n`, `n` the fan of `mode` for the shape.

    Complex dtypes: circular symmetry with E|z|^2 = v; `normal` a complex normal, `uniform` a
    uniform disk (|z|^2 ~ U[0, 2v]) and `truncated_normal` a complex normal with modulus truncated
    at 2 sd, rescaled so that E|z|^2 = v after truncation. A shape whose fan is 0 (or a 1-D shape
    under JAX's fans) is refused: the `errors` property requires the initializer to raise there.

    Args:
        scale: The variance's numerator, > 0 (e.g. 2.0 for He, 1.0 for LeCun and Glorot).
        mode: `"fan_in"`, `"fan_out"`, `"fan_avg"` or `"fan_geo_avg"` (JAX only).
        distribution: `"truncated_normal"` (|x| < 2 sd before scaling, std corrected by
            `TRUNCATED_NORMAL_STD`), `"normal"` or `"uniform"` (U[-sqrt(3v), sqrt(3v)]).
        in_axis (int | Sequence[int]): The input axes, for `fans="jax"`.
        out_axis (int | Sequence[int]): The output axes, for `fans="jax"`.
        batch_axis (int | Sequence[int]): The batch axes (in neither fan), for `fans="jax"`.
        fans: The fan rule: `"jax"` (`in_axis`, `out_axis`, `batch_axis`), `"haiku"`
            (`fan_in_axes`; Haiku divides by `max(1, n)`), `"haiku_input_size"`,
            `"equinox_gru"`/`"equinox_lstm"`/`"equinox_hidden"` (`shape[0]` over 3, 4 or 1 gates)
            or a callable `shape -> (fan_in, fan_out)`.
        fan_in_axes: The input axes, for `fans="haiku"` (None: all but the last).

    Raises:
        TypeError: `scale` is not a real number.
        ValueError: `scale` is not > 0, or `mode`, `distribution` or `fans` is not one of the
            above (or `mode="fan_geo_avg"` with `fans="haiku"`).

    Example:
        ```python
        laws.VarianceScaling(2.0, "fan_in", "truncated_normal")  # jax.nn.initializers.he_normal()
        laws.VarianceScaling(1.0, "fan_avg", "uniform")  # glorot_uniform()
        laws.VarianceScaling(1.0, "fan_in", "truncated_normal", fans="haiku")  # hk.initializers.VarianceScaling()
        ```
    """

    complex_ok = True

    def __init__(
        self,
        scale: float,
        mode: str,
        distribution: str,
        in_axis=-2,
        out_axis=-1,
        batch_axis=(),
        fans: str | Callable = "jax",
        fan_in_axes: Sequence[int] | None = None,
    ):
        self.scale = _positive("VarianceScaling", "scale", scale)
        if mode not in MODES:
            raise ValueError(f"VarianceScaling: mode={mode!r} is not one of {', '.join(MODES)}")
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"VarianceScaling: distribution={distribution!r} is not one of {', '.join(DISTRIBUTIONS)}")
        if not (fans in FAN_RULES or callable(fans)):
            raise ValueError(
                f"VarianceScaling: fans={fans!r} must be one of {', '.join(map(repr, FAN_RULES))} or a callable "
                "shape -> (fan_in, fan_out)"
            )
        if fans == "haiku" and mode == "fan_geo_avg":
            raise ValueError("VarianceScaling: mode='fan_geo_avg' is not a Haiku mode; use fans='jax'")
        self.mode, self.distribution, self.fans = mode, distribution, fans
        self.in_axis, self.out_axis, self.batch_axis = in_axis, out_axis, batch_axis
        self.fan_in_axes = None if fan_in_axes is None else tuple(fan_in_axes)

    def fan(self, shape: Sequence[int]) -> tuple[float, float]:
        """The fans of `shape` under this law's fan rule.

        Args:
            shape: The output's shape.

        Returns:
            (fan_in, fan_out).
        """
        if self.fans == "jax":
            return _fans.jax_fans(shape, self.in_axis, self.out_axis, self.batch_axis)
        if self.fans == "haiku":
            return _fans.haiku_fans(shape, self.fan_in_axes)
        if self.fans == "haiku_input_size":
            return _fans.haiku_input_size_fans(shape)
        if self.fans in _fans.STACKED_GATES:
            return _fans.stacked_gates_fans(shape, _fans.STACKED_GATES[self.fans])
        assert callable(self.fans)  # (a custom rule: shape -> (fan_in, fan_out))
        fan_in, fan_out = self.fans(tuple(shape))
        return float(fan_in), float(fan_out)

    def variance(self, shape: Sequence[int]) -> float:
        """The promised variance `scale / n` for `shape`.

        Args:
            shape: The output's shape.

        Returns:
            The variance.

        Raises:
            ValueError: The fan of `mode` is not > 0 for `shape`.
        """
        fan_in, fan_out = self.fan(shape)
        n = _fans.fan_denominator(self.mode, fan_in, fan_out)
        if self.fans == "haiku":
            n = max(1.0, n)
        if not n > 0:
            raise ValueError(f"shape={tuple(shape)} has {self.mode}={n!r}; the variance scale/{n!r} is undefined")
        return self.scale / n

    def diagnose(self, shape, observed_var):
        """Name every fan mode or slip that explains `observed_var` to within 1.5%.

        Args:
            shape (Sequence[int]): The case's shape.
            observed_var (float): The variance observed there.

        Returns:
            (str | None): The causes, or None when the variance matches or nothing explains it.
        """
        fan_in, fan_out = self.fan(shape)
        declared = self.variance(shape)
        ratio = observed_var / declared
        if abs(ratio - 1) <= 0.015:
            return None
        causes = []
        for mode in MODES:
            n = _fans.fan_denominator(mode, fan_in, fan_out)
            if mode != self.mode and n > 0 and abs(observed_var * n / self.scale - 1) < 0.015:
                causes.append(
                    f"division by {mode} (n={n:g}) instead of {self.mode} "
                    f"(n={_fans.fan_denominator(self.mode, fan_in, fan_out):g})"
                )
        for factor, cause in (
            (TRUNCATED_NORMAL_STD**2, "a missing 0.8796 truncation correction"),
            (1 / TRUNCATED_NORMAL_STD**2, "the 0.8796 truncation correction applied twice"),
            (2.0, "a gain (or scale) of 2 applied twice"),
            (4.0, "a gain of 2 applied to the std twice"),
            (0.5, "a missing gain of 2"),
        ):
            if abs(ratio / factor - 1) < 0.015:
                causes.append(cause)
        if not causes:
            return None
        return f"The variance is x{ratio:.4f} the promised one; it matches " + " or ".join(causes)

    def error_reason(self, shape, dtype):
        if refusal := super().error_reason(shape, dtype):
            return refusal
        try:
            if math.prod(shape) == 0:  # nothing to scale: an empty output (or a refusal) is right
                self.fan(shape)
                return None
            self.variance(shape)
        except ValueError as exc:
            return str(exc)
        return None

    def element_law(self, shape, dtype):
        v = self.variance(shape)
        if _dtypes.is_complex(dtype):
            if self.distribution == "normal":
                mod2 = stats.expon(scale=v)
            elif self.distribution == "uniform":
                mod2 = stats.uniform(0.0, 2 * v)
            else:
                mod2 = stats.truncexpon(4.0, scale=v / COMPLEX_TRUNCATED_MODULUS2_MEAN)
            return ComplexLaw(_element.continuous(mod2))
        sd = math.sqrt(v)
        if self.distribution == "normal":
            return _element.continuous(stats.norm(0.0, sd))
        if self.distribution == "uniform":
            limit = math.sqrt(3 * v)
            return _element.continuous(stats.uniform(-limit, 2 * limit))
        return _element.continuous(stats.truncnorm(-2.0, 2.0, scale=sd / TRUNCATED_NORMAL_STD))

    def _repr(self) -> str:
        axes = (
            f"in_axis={self.in_axis}, out_axis={self.out_axis}, batch_axis={self.batch_axis}"
            if self.fans == "jax"
            else f"fans={_fans_name(self.fans)}, fan_in_axes={self.fan_in_axes}"
        )
        return f"VarianceScaling({self.scale!r}, {self.mode!r}, {self.distribution!r}, {axes})"


def _fans_name(fans) -> str:
    """'haiku', or a callable's import path (no memory address, so reports are reproducible)."""
    if isinstance(fans, str):
        return repr(fans)
    return f"{getattr(fans, '__module__', '?')}.{getattr(fans, '__qualname__', type(fans).__qualname__)}"


def matrix_view(x: np.ndarray, column_axis: int) -> np.ndarray:
    """`x` as a (rows, columns) matrix: `column_axis` last, the other axes flattened (JAX's layout).

    Args:
        x: An array of at least one axis.
        column_axis: The axis that becomes the columns.

    Returns:
        The (rows, columns) view.
    """
    return np.moveaxis(x, column_axis, -1).reshape(-1, x.shape[column_axis])


class Orthogonal(Law):
    """Haar-distributed matrix with orthonormal columns (rows if wider than tall), times `scale`.

    The matrix is [`matrix_view(x, column_axis)`][initcheck.laws.matrix_view]: `QᵀQ = scale² I`
    when rows >= columns, `QQᵀ = scale² I` otherwise. Shapes of fewer than 2 axes are refused.

    Args:
        scale: The matrix's scale, non-zero.
        column_axis: The axis of the columns; the other axes are flattened into rows.

    Raises:
        TypeError: `scale` is not a real number or `column_axis` is not an int.
        ValueError: `scale` is 0 (use `Constant(0.0)`) or not finite.
    """

    iid = False
    has_structure = True

    def __init__(self, scale: float = 1.0, column_axis: int = -1):
        self.scale = _finite("Orthogonal", "scale", scale)
        if self.scale == 0:
            raise ValueError("Orthogonal: scale=0 gives the zero matrix; use laws.Constant(0.0)")
        if not isinstance(column_axis, int):
            raise TypeError(f"Orthogonal: column_axis={column_axis!r} must be an int")
        self.column_axis = column_axis

    def error_reason(self, shape, dtype):
        if refusal := super().error_reason(shape, dtype):
            return refusal
        if len(shape) < 2:
            return f"an orthogonal matrix needs at least a 2-D shape, got shape={tuple(shape)}"
        if not -len(shape) <= self.column_axis < len(shape):
            return f"column_axis={self.column_axis} is out of range for shape={tuple(shape)}"
        return None

    def matrix_dims(self, shape) -> tuple[int, int]:
        """(rows, columns) of the matrix view of `shape`.

        Args:
            shape (Sequence[int]): The output's shape.

        Returns:
            The matrix's (rows, columns).
        """
        cols = shape[self.column_axis]
        return math.prod(shape) // max(cols, 1), cols

    def matrix(self, x: np.ndarray, shape) -> np.ndarray:
        """One output as its (rows, columns) matrix over `scale`: orthonormal columns (rows when wide).

        Args:
            x: One output.
            shape (Sequence[int]): Its shape.

        Returns:
            The matrix, divided by `scale`.
        """
        return matrix_view(x, self.column_axis) / self.scale

    def draw_problem(self, x, shape, dtype):
        return _orthogonality_problem(self.matrix(x, shape), dtype)

    def _repr(self) -> str:
        return f"Orthogonal(scale={self.scale!r}, column_axis={self.column_axis})"


class DeltaOrthogonal(Law):
    """3-, 4- or 5-D kernel (spatial..., in, out), in <= out: zero except the centre tap.

    The centre tap `[(k-1)//2, ...]` is `Orthogonal(scale, column_axis)` on `shape[-2:]`. Other
    shapes are refused.

    Args:
        scale: The centre tap's scale, non-zero.
        column_axis: The axis of the columns within `shape[-2:]`.

    Raises:
        TypeError: `scale` is not a real number.
        ValueError: `scale` is 0 (use `Constant(0.0)`) or not finite.
    """

    iid = False
    has_structure = True

    def __init__(self, scale: float = 1.0, column_axis: int = -1):
        self.scale = _finite("DeltaOrthogonal", "scale", scale)
        if self.scale == 0:
            raise ValueError("DeltaOrthogonal: scale=0 gives the zero kernel; use laws.Constant(0.0)")
        self.column_axis = column_axis

    def centre(self, shape) -> tuple[int, ...]:
        """The centre tap's index, `(k-1)//2` on every spatial axis.

        Args:
            shape (Sequence[int]): The kernel's shape.

        Returns:
            The spatial index of the centre tap.
        """
        return tuple((k - 1) // 2 for k in shape[:-2])

    def matrix_dims(self, shape) -> tuple[int, int]:
        """(rows, columns) of the centre tap's matrix.

        Args:
            shape (Sequence[int]): The kernel's shape.

        Returns:
            The matrix's (rows, columns).
        """
        tap = tuple(shape[-2:])
        cols = tap[self.column_axis]
        return math.prod(tap) // max(cols, 1), cols

    def matrix(self, x: np.ndarray, shape) -> np.ndarray:
        """The centre tap of one output as its matrix over `scale`.

        Args:
            x: One output.
            shape (Sequence[int]): Its shape.

        Returns:
            The centre tap's matrix, divided by `scale`.
        """
        return matrix_view(x[self.centre(shape)], self.column_axis) / self.scale

    def draw_problem(self, x, shape, dtype):
        centre = self.centre(shape)
        rest = x.copy()
        rest[centre] = 0
        if np.any(rest):
            return f"{int(np.count_nonzero(rest))} non-zero values off the centre tap {centre}"
        return _orthogonality_problem(self.matrix(x, shape), dtype)

    def error_reason(self, shape, dtype):
        if refusal := super().error_reason(shape, dtype):
            return refusal
        if len(shape) not in (3, 4, 5):
            return f"a delta-orthogonal kernel must be 3-, 4- or 5-D, got shape={tuple(shape)}"
        if shape[-2] > shape[-1]:
            return f"a delta-orthogonal kernel needs fan_in <= fan_out, got shape={tuple(shape)}"
        return None

    def edge_shapes(self):
        return [(3, 3), (3, 5, 4), (3, 3, 4, 4, 4, 4)]

    def _repr(self) -> str:
        return f"DeltaOrthogonal(scale={self.scale!r}, column_axis={self.column_axis})"


class Identity(Law):
    """`gain * eye(shape[-2], shape[-1])`, broadcast over leading axes (for every key).

    Shapes of fewer than 2 axes are refused.

    Args:
        gain: The diagonal's value.

    Raises:
        TypeError: `gain` is not a real number.
        ValueError: `gain` is not finite.
    """

    iid = False
    random = False
    exact = True
    complex_ok = True
    has_structure = True

    def __init__(self, gain: float = 1.0):
        self.gain = _finite("Identity", "gain", gain)

    def expected(self, shape, dtype) -> np.ndarray:
        eye = np.eye(shape[-2], shape[-1]) * self.gain
        return np.broadcast_to(eye, shape)

    def draw_problem(self, x, shape, dtype):
        return _exact_problem(self, x, shape, dtype)

    def error_reason(self, shape, dtype):
        if refusal := super().error_reason(shape, dtype):
            return refusal
        if len(shape) < 2:
            return f"an identity matrix needs at least a 2-D shape, got shape={tuple(shape)}"
        return None

    def _repr(self) -> str:
        return f"Identity(gain={self.gain!r})"


class Deterministic(Law):
    """An exact table: for every key the output is the table, within `ulps`.

    The output must not depend on the key. `ulps` counts units in the last place of the dtype at
    the table's largest magnitude (so a float32 table computed by rounding a float64 reference
    passes at `ulps=1`; sines of large arguments computed in float32 need more). Integer and
    boolean tables are exact.

    Args:
        expected (Callable | ArrayLike): A callable `(shape, dtype) -> array` (e.g. a sinusoidal
            position embedding) or the table itself (an array, for one shape only).
        ulps: The tolerance, an int >= 0.

    Raises:
        TypeError: `expected` is neither a callable nor an array.
        ValueError: `ulps` is not an int >= 0, or the array has NaN or inf values.
    """

    iid = False
    random = False
    exact = True
    integer_ok = True
    complex_ok = True
    has_structure = True

    def __init__(self, expected, ulps: int = 4):
        if not isinstance(ulps, int) or isinstance(ulps, bool) or ulps < 0:
            raise ValueError(f"Deterministic: ulps={ulps!r} must be an int >= 0")
        self.ulps = ulps
        if callable(expected):
            self.expected, self.array = expected, None
            return
        try:
            array = np.asarray(expected)
            values = _dtypes.to_float64(array)
        except (TypeError, ValueError):
            raise TypeError(
                f"Deterministic: expected={expected!r} must be a callable (shape, dtype) -> array or an array"
            ) from None
        if not np.all(np.isfinite(values)):
            raise ValueError("Deterministic: expected has NaN or inf values; a table must be finite")
        self.expected, self.array = None, values

    def table(self, shape, dtype) -> np.ndarray:
        """The exact values for `(shape, dtype)`.

        Args:
            shape (Sequence[int]): The case's shape.
            dtype (DTypeLike): The case's dtype.

        Returns:
            The table as float64 (complex128 for complex tables).
        """
        if self.array is not None:
            return self.array
        return _dtypes.to_float64(np.asarray(self.expected(tuple(shape), _dtypes.canonical(dtype))))

    def error_reason(self, shape, dtype):
        if refusal := super().error_reason(shape, dtype):
            return refusal
        if self.array is not None:
            if tuple(shape) != self.array.shape:
                return f"the table has shape {self.array.shape}, not {tuple(shape)}"
            return None
        try:
            table = self.table(shape, dtype)
        except Exception as exc:  # noqa: BLE001 - the table is not defined there: the initializer must refuse too
            return f"the table is not defined for shape={tuple(shape)}: {type(exc).__name__}: {exc}"
        if table.shape != tuple(shape):
            return f"the table function returns shape {table.shape} for shape={tuple(shape)}"
        return None

    def _identity(self) -> object:
        table = None if self.array is None else (self.array.shape, self.array.tobytes())
        return (self.expected, table, self.ulps)

    def draw_problem(self, x, shape, dtype):
        problem = self.mismatch(x, shape, dtype)
        return None if problem is None else f"not {self!r}: {problem}"

    def mismatch(self, x: np.ndarray, shape, dtype) -> str | None:
        """What is wrong with one output.

        Args:
            x: One output, as float64.
            shape (Sequence[int]): Its shape.
            dtype (DTypeLike): The dtype it was drawn in.

        Returns:
            What differs from the table, or None when it is the table.
        """
        want = self.table(shape, dtype)
        if x.shape != want.shape:
            return f"shape {x.shape} is not the table's {want.shape}"
        if x.size == 0:
            return None
        if not _dtypes.is_inexact(dtype):  # integer and boolean tables are exact
            bad = int(np.count_nonzero(x != want))
            return f"{bad} of {x.size} elements differ from the table" if bad else None
        magnitude = max(float(np.max(np.abs(want))), float(ml_dtypes.finfo(_dtypes.real_part(dtype)).tiny))
        ulp = _dtypes.resolution(dtype) * magnitude
        worst = float(np.max(np.abs(x - want)))
        if worst > self.ulps * ulp:
            bad = int(np.count_nonzero(np.abs(x - want) > self.ulps * ulp))
            return (
                f"{bad} of {x.size} elements differ from the table by more than {self.ulps} ulp "
                f"(up to {worst:.3g}, {worst / ulp:.3g} ulp at the table's largest magnitude {magnitude:.3g})"
            )
        return None

    def _repr(self) -> str:
        if self.array is not None:
            return f"Deterministic(<table of shape {self.array.shape}>, ulps={self.ulps})"
        name = f"{getattr(self.expected, '__module__', '?')}:{getattr(self.expected, '__qualname__', '?')}"
        return f"Deterministic({name!r}, ulps={self.ulps})"  # reads back when the table is importable


class Dirac(Law):
    """A kernel (spatial..., in, out) that passes channels through (`torch.nn.init.dirac_` in JAX's layout).

    1 at the centre tap `[k // 2, ...]` from input `d` to output `g * out // groups + d` for every
    group `g` and `d < min(out // groups, in)`, 0 elsewhere. Shapes that are not 3-, 4- or 5-D, or
    whose `out` is not divisible by `groups`, are refused.

    Args:
        groups: The number of groups, an int >= 1.

    Raises:
        ValueError: `groups` is not an int >= 1.
    """

    iid = False
    random = False
    exact = True
    complex_ok = True
    has_structure = True

    def __init__(self, groups: int = 1):
        if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
            raise ValueError(f"Dirac: groups={groups!r} must be an int >= 1")
        self.groups = groups

    def expected(self, shape, dtype) -> np.ndarray:
        """The kernel for `shape`.

        Args:
            shape (Sequence[int]): The kernel's shape (spatial..., in, out).
            dtype (DTypeLike): The case's dtype (unused: the values are 0 and 1).

        Returns:
            The kernel, as float64.
        """
        out = np.zeros(shape)
        per_group = shape[-1] // self.groups
        centre = tuple(k // 2 for k in shape[:-2])
        for g in range(self.groups):
            for d in range(min(per_group, shape[-2])):
                out[centre + (d, g * per_group + d)] = 1.0
        return out

    def error_reason(self, shape, dtype):
        if refusal := super().error_reason(shape, dtype):
            return refusal
        if len(shape) not in (3, 4, 5):
            return f"a Dirac kernel must be 3-, 4- or 5-D (spatial..., in, out), got shape={tuple(shape)}"
        if shape[-1] % self.groups:
            return f"out={shape[-1]} is not divisible by groups={self.groups}"
        return None

    def draw_problem(self, x, shape, dtype):
        return _exact_problem(self, x, shape, dtype)

    def _repr(self) -> str:
        return f"Dirac(groups={self.groups})"


class Sparse(Law):
    """2-D (rows, columns): exactly `k = ceil(sparsity * rows)` zeros in every column, the rest N(0, std^2).

    The zeros are at uniformly random rows (`torch.nn.init.sparse_`; in JAX's (fan_in, fan_out)
    layout every unit keeps `rows - k` inputs, as in Martens 2010). One element is 0 with
    probability k/rows, else normal; the `structure` property counts the zeros. Shapes that are
    not 2-D are refused.

    Args:
        sparsity: The share of zeros per column, in [0, 1).
        std: The std of the non-zero elements, > 0.

    Raises:
        TypeError: A parameter is not a real number.
        ValueError: `sparsity` is not in [0, 1), or `std` is not > 0.
    """

    has_structure = True

    def __init__(self, sparsity: float, std: float = 0.01):
        self.sparsity = _finite("Sparse", "sparsity", sparsity)
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"Sparse: sparsity={sparsity!r} must be in [0, 1); 1 would zero everything")
        self.std = _positive("Sparse", "std", std)

    def dependent_axes(self, shape):
        """The rows' axis: exactly ceil(sparsity * rows) zeros per column make a column's elements dependent.

        (With 2 rows and one zero each, one of every pair is zero.)

        Args:
            shape (Sequence[int]): The case's shape.

        Returns:
            (tuple[int, ...]): `(0,)`.
        """
        return (0,)

    def zeros_per_column(self, rows: int) -> int:
        """`ceil(sparsity * rows)`.

        Args:
            rows: The number of rows.

        Returns:
            The number of zeros in every column.
        """
        return math.ceil(self.sparsity * rows)

    def element_law(self, shape, dtype):
        share = self.zeros_per_column(shape[0]) / shape[0]
        normal = _element.continuous(stats.norm(0.0, self.std))
        if share == 0:
            return normal
        return RealLaw(((share, _element.atom(0.0).parts[0][1]), (1 - share, normal.parts[0][1])))

    def structure_problem(self, x, dtype):
        """Every column has at least k zeros, and not many more.

        Normal values that round to 0 (float16 underflow, probability p0 each) may add a few, at
        most the Poisson(p0 * #normals) 1 - 1e-9 quantile.

        Args:
            x (np.ndarray): One output, as float64.
            dtype (DTypeLike): The dtype it was drawn in.

        Returns:
            (str | None): What is wrong, or None.
        """
        rows, cols = x.shape
        k = self.zeros_per_column(rows)
        zeros = np.count_nonzero(x == 0, axis=0)
        if np.any(zeros < k):
            bad = int(np.flatnonzero(zeros < k)[0])
            return f"column {bad} has {int(zeros[bad])} zeros, fewer than ceil({self.sparsity} * {rows}) = {k}"
        tiny = float(ml_dtypes.finfo(_dtypes.real_part(dtype)).smallest_subnormal)
        p0 = 2 * stats.norm.cdf(tiny / 2, scale=self.std) - 1
        allowed = stats.poisson.isf(1e-9, p0 * (rows - k) * cols) if p0 > 0 else 0
        excess = int(zeros.sum()) - k * cols
        if excess > allowed:
            return (
                f"{excess} zeros more than the {k} per column that ceil({self.sparsity} * {rows}) gives "
                f"(rounding to 0 explains at most {allowed:g})"
            )
        return None

    def error_reason(self, shape, dtype):
        if refusal := super().error_reason(shape, dtype):
            return refusal
        if len(shape) != 2:
            return f"a sparse matrix must be 2-D, got shape={tuple(shape)}"
        return None

    def edge_shapes(self):
        return [(4, 4, 4)]

    def _repr(self) -> str:
        return f"Sparse(sparsity={self.sparsity!r}, std={self.std!r})"


class Mixture(Law):
    """`sum_i w_i law_i` of real element-wise laws, atoms (`Constant`) allowed.

    Args:
        components: `(weight, law)` pairs; the weights are > 0 and sum to 1, the laws are fixed
            element-wise laws (not `Mixture` or `VarianceScaling`) or `Constant` atoms, or frozen
            scipy.stats distributions.

    Raises:
        TypeError: A component is not a `(weight, law)` pair, or its law is not a fixed
            element-wise law.
        ValueError: `components` is empty, a weight is not > 0, or the weights do not sum to 1.

    Example:
        The thresholded uniform (U(-10, 10) zeroed where |w| < 5):

        ```python
        Mixture([(0.5, Constant(0.0)), (0.25, Uniform(5, 10)), (0.25, Uniform(-10, -5))])
        ```
    """

    def __init__(self, components: Sequence[tuple[float, Law]]):
        components = list(components)
        if not components:
            raise ValueError("Mixture: components=[] is empty; pass [(weight, law), ...]")
        parsed = []
        for i, item in enumerate(components):
            try:
                weight, law = item
            except (TypeError, ValueError):
                raise TypeError(f"Mixture: components[{i}]={item!r} must be a (weight, law) pair") from None
            weight = _positive("Mixture", f"components[{i}] weight", weight)
            law = as_law(law)
            if not (law.iid or isinstance(law, Constant)) or isinstance(law, (Mixture, VarianceScaling)):
                raise TypeError(f"Mixture: components[{i}] law {law!r} must be a fixed element-wise law")
            parsed.append((weight, law))
        total = sum(w for w, _ in parsed)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"Mixture: weights sum to {total!r}, not 1; normalize them")
        self.components = tuple(parsed)

    def element_law(self, shape, dtype):
        parts = []
        for w, law in self.components:
            parts.extend((w * pw, p) for pw, p in law.element_law(shape, dtype).parts)
        return RealLaw(tuple(parts))

    def _repr(self) -> str:
        return "Mixture([" + ", ".join(f"({w!r}, {law!r})" for w, law in self.components) + "])"


def _exact_problem(law, x: np.ndarray, shape, dtype) -> str | None:
    """How one output `x` (float64) differs from the exact array `law.expected` gives, or None."""
    want = _dtypes.to_float64(np.asarray(law.expected(shape, dtype), np.float64).astype(_dtypes.canonical(dtype)))
    if np.array_equal(x, want):
        return None
    diff = np.abs(x - want)
    return f"{int(np.count_nonzero(diff > 0))} of {want.size} elements differ from {law!r}, by up to {diff.max():.3g}"


def _orthogonality_problem(q: np.ndarray, dtype) -> str | None:
    """Why the matrix `q` (over its scale) is not orthonormal to `ORTHO_EPS` eps of `dtype`, or None."""
    error, eps = orthogonality_error(q[None]), _dtypes.eps(dtype)
    if error <= ORTHO_EPS * eps:
        return None
    side = "QᵀQ" if q.shape[0] >= q.shape[1] else "QQᵀ"
    return f"not orthogonal: max |{side}/scale² - I| = {error:.3g} > {ORTHO_EPS} eps ({ORTHO_EPS * eps:.2g})"


def as_law(expect) -> Law:
    """A [`Law`][initcheck.laws.Law] for `expect`.

    Args:
        expect (Law | scipy.stats.rv_continuous): A law itself, or a frozen continuous scipy.stats distribution.

    Returns:
        `expect` if it is a law, else a [`Distribution`][initcheck.laws.Distribution] of it.

    Raises:
        TypeError: `expect` is neither.
        ValueError: The distribution's parameters are invalid.
    """
    if isinstance(expect, Law):
        return expect
    return Distribution(expect)


__all__ = [
    "Constant",
    "DeltaOrthogonal",
    "Deterministic",
    "Dirac",
    "Distribution",
    "Identity",
    "Law",
    "Mixture",
    "Normal",
    "Orthogonal",
    "Sparse",
    "TruncatedNormal",
    "Uniform",
    "VarianceScaling",
    "as_law",
    "matrix_view",
]
