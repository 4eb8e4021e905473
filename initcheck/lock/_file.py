"""The lock file: JSON, keys sorted, one line per value, so that it diffs well in code review and is
the same bytes from the same values whatever the run (serial, ``-n 2``, the command line).

::

    {
      "backends": {
        "cpu": {
          "environment": {"versions": {...}, "settings": {...}, "xla_flags": "", "device": "cpu", "seed": 0},
          "targets": {
            "mypkg.inits.my_init": {"kind": "initializer", "values": {"float32[64x32] key 0": "float32[64,32] sha256:..."}},
            "mypkg.models:mlp": {"kind": "model", "values": {"params/Dense_0/kernel": "float32[8,16] sha256:..."}}
          }
        }
      },
      "initcheck_lock": 1
    }

Values are recorded per backend (JAX's default backend that made them): CPU and GPU may compute the
same draw to different last bits.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

FORMAT_VERSION = 1


class LockError(ValueError):
    """A lock file that cannot be read; the message names the file and the fix."""


@dataclasses.dataclass
class Section:
    """One backend's values and the environment that made them."""

    environment: dict
    targets: dict[str, dict]  # target -> {"kind": ..., "values": {name: digest}}

    def values(self, target: str) -> dict[str, str] | None:
        entry = self.targets.get(target)
        return None if entry is None else dict(entry["values"])


@dataclasses.dataclass
class Lock:
    """A lock file's content: a `Section` per backend (empty for a file not yet written)."""

    path: Path
    sections: dict[str, Section] = dataclasses.field(default_factory=dict)
    exists: bool = False

    @classmethod
    def read(cls, path) -> Lock:
        path = Path(path)
        if path.is_dir():
            raise LockError(f"lock={path} is a folder; give a file path such as initcheck.lock")
        if not path.exists():
            return cls(path)
        fix = f"delete {path} (the next run writes it again) or give another path"
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise LockError(f"lock={path} cannot be read as an initcheck lock ({exc}); {fix}") from None
        if not isinstance(data, dict) or data.get("initcheck_lock") != FORMAT_VERSION:
            found = data.get("initcheck_lock") if isinstance(data, dict) else None
            raise LockError(
                f"lock={path} is not an initcheck lock of format {FORMAT_VERSION} (initcheck_lock={found!r}); {fix}"
            )
        try:
            sections = {
                backend: Section(
                    dict(section["environment"]),
                    {
                        name: {"kind": str(t["kind"]), "values": {str(k): str(v) for k, v in t["values"].items()}}
                        for name, t in section["targets"].items()
                    },
                )
                for backend, section in data["backends"].items()
            }
        except (KeyError, TypeError, AttributeError) as exc:
            raise LockError(f"lock={path} is damaged (missing or malformed {exc}); {fix}") from None
        return cls(path, sections, exists=True)

    def text(self) -> str:
        data = {
            "initcheck_lock": FORMAT_VERSION,
            "backends": {
                backend: {"environment": s.environment, "targets": s.targets} for backend, s in self.sections.items()
            },
        }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def write(self) -> bool:
        """Write the file when its content changed; True when it was written."""
        text = self.text()
        if self.path.exists() and self.path.read_text() == text:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(text)
        return True

    def other_backends(self, backend: str, target: str) -> list[tuple[str, dict[str, str]]]:
        """(backend, values) of ``target`` recorded on other backends, by name."""
        return [
            (name, values)
            for name, s in sorted(self.sections.items())
            if name != backend and (values := s.values(target)) is not None
        ]
