"""The one shape every extract format reaches ingest in: the files to read, and what the
insurer delivered them as."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Extract", "ExtractFile"]


@dataclass(frozen=True, slots=True)
class ExtractFile:
    """One file ingest reads.

    `path` is what is read (the delivered file, or its canonical mapping); `source_name` is the
    name the insurer knows, used in accounts and quarantine rows; `first_row` is the number of
    the first record (2 in a CSV with a header line, 1 in Parquet and mapped sources).
    """

    path: Path
    kind: str  # "plans", "members", "claims", "requests" or "accumulators"
    source_name: str
    first_row: int = 2


@dataclass(frozen=True, slots=True)
class Extract:
    """One period's plan, member and claim files, in the format they were delivered in, and the
    confidential-communication requests and the claims system's accumulators when the insurer
    delivered them."""

    format: str
    plans: ExtractFile
    members: ExtractFile
    claims: tuple[ExtractFile, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)  # counts only, never PHI
    requests: ExtractFile | None = None
    accumulators: ExtractFile | None = None
