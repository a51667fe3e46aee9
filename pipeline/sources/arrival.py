"""Has a period's extract finished arriving? What the DAG's sensor asks before ingest starts.

Files being present is not enough: an insurer's transfer may still be writing them, and ingest
would read a truncated file (a partial month, its last rows quarantined). So an extract counts as
arrived once it has extract files, none of them has changed for a quiet period, and, where the
insurer writes one, the marker file that closes the delivery is there too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Arrival:
    """What a look at the period's folder or prefix found (names and times only, no content)."""

    files: int
    last_change: datetime | None  # when an extract file last changed (written, moved in)
    marker_present: bool | None = None  # None: no marker file is expected

    def waiting_for(self, now: datetime, quiet: timedelta) -> str | None:
        """Why the extract is not ready yet, in words for the task log; None when it is."""
        if not self.files:
            return "no extract files yet"
        if self.last_change is not None and now - self.last_change < quiet:
            changed = max(0, int((now - self.last_change).total_seconds() // 60))
            return (f"a file changed {changed} minute(s) ago; waiting until none has changed for "
                    f"{int(quiet.total_seconds() // 60)} minutes")
        if self.marker_present is False:
            return "the delivery's marker file is not there yet"
        return None


def local_arrival(folder: Path, suffixes: tuple[str, ...], marker: str | None) -> Arrival:
    """Extract files (by name; hidden and partial files do not count) in a local period folder."""
    if not folder.is_dir():
        return Arrival(0, None, None if marker is None else False)
    files = [p for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(suffixes)]
    # ctime too: a file moved in, or copied with its old modification time kept, counts as changed
    newest = max((max(stat.st_mtime, stat.st_ctime) for stat in (p.stat() for p in files)), default=None)
    return Arrival(len(files), None if newest is None else datetime.fromtimestamp(newest, UTC),
                   None if marker is None else (folder / marker).is_file())
