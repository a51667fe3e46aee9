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

from pipeline.settings import is_extract_file


@dataclass(frozen=True, slots=True)
class Arrival:
    """What a look at the period's folder or prefix found (names and times only, no content)."""

    files: int
    last_change: datetime | None  # when an extract file last changed (written, moved in)
    marker_present: bool | None = None  # None: no marker file is expected
    uploading: int = 0  # S3 multipart uploads of extract files still in progress
    abandoned: int = 0  # S3 multipart uploads begun long ago and never finished

    def waiting_for(self, now: datetime, quiet: timedelta) -> str | None:
        """Why the extract is not ready yet, in words for the task log; None when it is."""
        if not self.files:
            return "no extract files yet"
        if self.uploading:
            return f"{self.uploading} upload(s) still in progress"
        if quiet and self.last_change is not None and now - self.last_change < quiet:
            changed = max(0, int((now - self.last_change).total_seconds() // 60))
            return (f"a file changed {changed} minute(s) ago; waiting until none has changed for "
                    f"{int(quiet.total_seconds() // 60)} minutes")
        if self.marker_present is False:
            return "the delivery's marker file is not there yet"
        return None


def local_arrival(folder: Path, marker: str | None) -> Arrival:
    """Extract files (by name; hidden and partial files do not count) in a local period folder."""
    if not folder.is_dir():
        return Arrival(0, None, None if marker is None else False)
    files = [p for p in folder.iterdir() if p.is_file() and is_extract_file(p.name)]
    # the status-change time: set by the system on every write and on a move in, even when a
    # copy keeps the sender's modification time (old, or ahead of this clock)
    newest = max((p.stat().st_ctime for p in files), default=None)
    return Arrival(len(files), None if newest is None else datetime.fromtimestamp(newest, UTC),
                   None if marker is None else (folder / marker).is_file())
