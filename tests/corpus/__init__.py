"""Realistic models for the audit, written the way the code bases people train are written (Flax's
wmt/lm1b/imagenet examples, big_vision's ViT and Mixer, MaxText/t5x-style partitioned layers, nnx
transformers and ensembles, Haiku's transformer, IMPALA and VQ-VAE examples, ``hk.layer_stack``).
Each entry builds a small instance (widths of 16-64) so that the whole corpus audits in seconds.

An entry is ``Entry(name, build, flagged, known)``: ``build()`` returns ``(model, inputs, audit
kwargs)``, ``flagged`` maps the paths of values with a true defect the audit must report to the
text its failure must name, and ``known`` the paths of values whose failures a known framework
defect explains to that defect's name (both empty for a model that must audit clean), and
``uncovered`` the paths of values made by user code whose key initcheck cannot derive (their law is
given with ``expect=``) to the text of the reason."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    build: Callable[[], tuple]
    flagged: dict = dataclasses.field(default_factory=dict)  # path -> text its failed verdict names
    known: dict = dataclasses.field(default_factory=dict)  # path -> the known defect its failures show
    uncovered: dict = dataclasses.field(default_factory=dict)  # path -> why its derivation cannot be modelled

    def __str__(self):
        return self.name
