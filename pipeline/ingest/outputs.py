"""An ingest's outputs change whole: the previous ones stay until the new ones are complete.

Ingest writes into a fresh staging folder beside the run's folder (`.<run>.ingest-XXXXXXXX/new/`)
and, only once everything is there (canonical lines, member and plan files, quarantine, manifest),
moves it in entry by entry, each previous entry first moved aside (`previous/`). Renames on one
file system: no copying, whatever the size. The caller commits the ledger's accounts around the
moves (`ingest(commit=...)`); if a move or the commit fails, `undo` puts every previous entry
back, so a failed ingest leaves the run's folder as it was.

The staging folder is removed afterwards either way. One left behind by a killed process is
removed by the next ingest of the run: nothing in it is needed, since the ledger never recorded
that ingest as succeeded (compose and render refuse the period until an ingest succeeds).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

__all__ = ["OUTPUTS", "StagedOutputs"]

OUTPUTS = ("lines", "members.parquet", "plans.parquet", "quarantine", "mapped", "ingest.json", "staging")
"""What an ingest owns in the run's folder (`staging` only as a leftover of an interrupted ingest):
the previous ingest's entries are replaced even where the new ingest writes none (no `mapped/`
from a canonical extract after a FHIR one). Compose's and the download's files are not touched."""


class StagedOutputs:
    """A fresh staging folder for one ingest of `target`, and the swap of its entries into it."""

    def __init__(self, target: Path) -> None:
        self.target = target
        target.parent.mkdir(parents=True, exist_ok=True)
        for leftover in target.parent.glob(f".{target.name}.ingest-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        self.root = Path(tempfile.mkdtemp(prefix=f".{target.name}.ingest-", dir=target.parent))
        self.new = self.root / "new"
        self.previous = self.root / "previous"
        self.new.mkdir()
        self.previous.mkdir()
        self._moved_in: list[str] = []
        self._moved_aside: list[str] = []

    def swap_in(self) -> None:
        """Move the previous entries aside and the new ones in; on any error, undo and raise."""
        self.target.mkdir(parents=True, exist_ok=True)
        try:
            for name in sorted({entry.name for entry in self.new.iterdir()} | set(OUTPUTS)):
                current, fresh = self.target / name, self.new / name
                if current.exists() or current.is_symlink():
                    current.rename(self.previous / name)
                    self._moved_aside.append(name)
                if fresh.exists():
                    fresh.rename(current)
                    self._moved_in.append(name)
        except BaseException:
            self.undo()
            raise

    def undo(self) -> None:
        """Put the previous entries back where they were (after a failed move or commit)."""
        while self._moved_in:
            name = self._moved_in.pop()
            (self.target / name).rename(self.new / name)
        while self._moved_aside:
            name = self._moved_aside.pop()
            (self.previous / name).rename(self.target / name)

    def discard(self) -> None:
        """Remove the staging folder: the previous entries after a swap, the new ones after a failure."""
        shutil.rmtree(self.root, ignore_errors=True)
