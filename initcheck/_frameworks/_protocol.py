"""What initcheck knows of one framework, behind one ``Protocol`` (the pattern of pytest-xdist's
``scheduler/protocol.py``: one protocol, one module per implementation, a registry).

A framework module (``linen``, ``nnx``, ``haiku``, ``equinox``, ``keras``) provides a
`Framework`: it recognises the models it makes, records their init (every value with its
declared initializer, key, shape and dtype), records it again under another root key, traces the
forward pass, names the settings that change its values and says why two values share a key; and
its catalog entries (``catalog_entries()``; JAX's are in ``jax_nn``, initcheck's own in ``own``).
The law modules (``jax_laws``, ``flax_laws``, ``haiku_laws``, ``keras_laws``, ``equinox_layers``)
provide the law table of their builders, their settings and their samplers' known defects.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from initcheck._record import Forward, Model, Parameter


SAME_KEY = "the framework handed both the same key"
IGNORED_KEY = (
    "its initializer ignores the key it is handed (a fixed key such as PRNGKey(42), or a key drawn once and captured)"
)


class Unavailable(Exception):
    """A setting that the installed packages do not have."""


@dataclasses.dataclass(frozen=True)
class Setting:
    """A process-wide setting that changes initial values: ``read()`` its value now,
    ``apply(value)`` for a block, ``blind(now)`` the other values worth trying, ``how(value)`` the
    Python that sets it, ``history`` what is known about it."""

    name: str
    read: Callable[[], Any]
    apply: Callable[[Any], contextlib.AbstractContextManager]
    blind: Callable[[Any], list]
    how: Callable[[Any], str]
    history: str

    def value(self) -> Any:
        """The value now, or None where the installed packages have no such setting."""
        try:
            return self.read()
        except Unavailable:
            return None


@dataclasses.dataclass
class Recording:
    """A model's init as a framework records it: every value it made, and the built model (what
    the forward pass runs: an nnx module, an Equinox pytree, a Keras model; None for linen and
    Haiku, whose forward pass is ``apply``)."""

    parameters: list[Parameter]
    built: Any = None


class Framework(Protocol):
    """Everything initcheck knows of one framework's models."""

    name: str  # the audit's name of it: "flax.linen", "flax.nnx", "haiku", "equinox", "keras"
    family: str  # its name in initcheck's vocabulary of frameworks (FRAMEWORKS): "flax", "haiku", ...
    settings: tuple[Setting, ...]  # the process-wide settings that change its values
    reinitializes: bool  # whether a model can be made again from another root key

    @property
    def record_abstract(self) -> Callable[..., Recording] | None:
        """``record_abstract(target, settings, other_rng, whole=False) -> Recording``: the init
        traced under ``jax.eval_shape`` (no value made), each ``Parameter.value`` a
        ShapeDtypeStruct and ``Parameter.lazy`` how to make it (its declared initializer slice by
        slice; the model's own init pruned to it, from the root or ``other_rng``; ``whole``: one
        jitted init of the whole model); None where the framework has no abstract path (then a
        model over the memory budget is refused)."""
        ...

    def recognises(self, model: Any) -> bool:
        """``model`` is one of this framework's (a module, a transformed function, a factory)."""
        ...

    def refusal(self, model: Any) -> str | None:
        """Why ``model``, one of this framework's, cannot be audited as it is, with the fix (an
        Equinox or nnx model that is already built), or None."""
        ...

    def describe(self, model: Any) -> str:
        """The model's name in reports: ``"flax.linen MLP"``."""
        ...

    def record(self, target: Model, settings: Mapping[str, Any]) -> Recording:
        """Initialize ``target`` once, eagerly, and record every value it makes. ``settings``: the
        values of this framework's :attr:`settings` to model the derivation with (by name; a
        setting not given is read from the framework's config)."""
        ...

    def forward(self, target: Model, recording: Recording) -> Forward:
        """The forward pass as a function of the values (``effective_fan``, the signal profile);
        raises ``NoForward`` with the fix when it cannot be traced."""
        ...

    def values(self, target: Model) -> dict[str, Any]:
        """Every value ``target``'s init makes, by path, computed as the user's code computes it
        (the reproducibility lock's digests)."""
        ...

    def shapes(self, target: Model) -> dict[tuple[str, str], Any]:
        """The ``jax.ShapeDtypeStruct`` of every value ``target``'s init makes, by ``(collection,
        path)`` as :meth:`record` names them, without making any (``jax.eval_shape``)."""
        ...

    def key_cause(self) -> str:
        """Why two of its values share a key, and the fix."""
        ...

    def ignored_key_cause(self) -> str:
        """Why a random value comes out the same from another root key."""
        ...


def qualified_name(framework: str, model: Any) -> str:
    """``"flax.linen MLP"``: the framework's name and the model's class or function name."""
    target = model if inspect.isclass(model) or inspect.isfunction(model) else type(model)
    return f"{framework} {getattr(target, '__qualname__', repr(target))}"
