"""Finding a period's extract (a local folder or an S3 prefix), telling its format, and
opening it: canonical files as they are, FHIR and Synthea mapped to canonical files first."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pipeline.ingest.sources.errors import ExtractFileError, ExtractSourceError
from pipeline.ingest.sources.extract import Extract, ExtractFile
from pipeline.ingest.sources.s3 import fetch_period

__all__ = ["FORMATS", "canonical_extract", "detect_format", "locate_period", "open_extract"]

FORMATS = ("canonical", "fhir", "synthea")


def locate_period(url: str | None, default_root: Path, period: str, download_to: Path, *,
                  endpoint_url: str | None = None) -> Path:
    """The local folder holding one period's extract: `<root>/<period>/` on disk, or the period's
    S3 prefix downloaded into `download_to`."""
    if url and url.startswith("s3://"):
        return fetch_period(url, period, download_to, endpoint_url=endpoint_url)
    root = Path(url.removeprefix("file://")) if url else default_root
    return root / period


def detect_format(folder: Path) -> str:
    """canonical (members + claims files), synthea (claims_transactions.csv) or fhir (*.ndjson/*.json)."""
    if not folder.is_dir():
        raise ExtractSourceError(f"extract folder {folder.name} does not exist")
    names = {p.name for p in folder.iterdir() if p.is_file()}
    if {"claims_transactions.csv", "patients.csv"} <= names:
        return "synthea"
    if any(n.startswith("members.") for n in names):
        return "canonical"
    if any(n.endswith((".ndjson", ".jsonl", ".json", ".ndjson.gz")) for n in names):
        return "fhir"
    return "canonical"  # let canonical discovery name what is missing


def open_extract(folder: Path, work_dir: Path, *, period: str | None = None,
                 fmt: str = "auto") -> Extract:
    """The files of one period's extract, mapped to canonical columns when needed, with the
    period's confidential-communication requests whatever the claims' format (they come from the
    insurer's member-services system, in canonical form)."""
    fmt = detect_format(folder) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise ExtractSourceError(f"unknown extract format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if fmt == "canonical":
        return canonical_extract(folder)
    requests = confidential_requests(folder)  # a requests file it cannot read stops it before mapping
    accumulators = accumulators_file(folder)
    if fmt == "fhir":
        from pipeline.ingest.sources.fhir import fhir_extract

        mapped = fhir_extract(folder, work_dir / "mapped", period=period)
    else:
        from pipeline.ingest.sources.synthea import synthea_extract

        mapped = synthea_extract(folder, work_dir / "mapped", period=period)
    return replace(mapped, requests=requests, accumulators=accumulators)


def canonical_extract(folder: Path) -> Extract:
    """The member file, plan file and claim files of a canonical extract folder."""
    if not folder.is_dir():
        raise ExtractSourceError(f"extract folder {folder.name} does not exist")
    _refuse_compressed(folder)
    members = _one_of(folder, "members")
    plans = _one_of(folder, "plans")
    claims = sorted([*folder.glob("claims*.csv"), *folder.glob("claims*.parquet")])
    if not claims:
        raise ExtractFileError(f"no claims*.csv or claims*.parquet file in extract folder {folder.name}")
    return Extract("canonical", _file(plans, "plans"), _file(members, "members"),
                   tuple(_file(p, "claims") for p in claims), requests=confidential_requests(folder),
                   accumulators=accumulators_file(folder))


def confidential_requests(folder: Path) -> ExtractFile | None:
    """The confidential-communication requests file, when the folder has one (any format: the
    requests come from the insurer's member-services system, not the claims feed). A compressed
    one is refused: passed over unread, the patients' requests would silently go unheeded."""
    return _optional_file(folder, "confidential_requests", "requests")


def accumulators_file(folder: Path) -> ExtractFile | None:
    """The claims system's accumulators file, when the folder has one (any format: canonical
    CSV or Parquet). A compressed one is refused, as a requests file is."""
    return _optional_file(folder, "accumulators", "accumulators")


def _optional_file(folder: Path, stem: str, kind: str) -> ExtractFile | None:
    for path in sorted(folder.glob(f"{stem}.*")):
        if path.name.endswith(COMPRESSED_SUFFIXES):
            raise ExtractFileError(f"{path.name}: the file is compressed ({path.suffix}); compressed "
                                   f"{kind} files are not read: deliver it uncompressed")
    found = [p for p in (folder / f"{stem}.csv", folder / f"{stem}.parquet") if p.exists()]
    if len(found) > 1:
        raise ExtractFileError(f"{stem}.csv and {stem}.parquet are both in {folder.name}: keep one")
    return _file(found[0], kind) if found else None


COMPRESSED_SUFFIXES = (".gz", ".zip", ".bz2", ".xz", ".zst")


def _refuse_compressed(folder: Path) -> None:
    """A compressed plan, member or claims file would otherwise be passed over unread."""
    for path in sorted(folder.iterdir()):
        if (path.is_file() and path.name.endswith(COMPRESSED_SUFFIXES)
                and path.name.startswith(("members.", "plans.", "claims", "confidential_requests.",
                                          "accumulators."))):
            raise ExtractFileError(f"{path.name}: the file is compressed ({path.suffix}); compressed "
                                   "canonical files are not read: deliver it uncompressed")


def _one_of(folder: Path, stem: str) -> Path:
    found = [p for p in (folder / f"{stem}.csv", folder / f"{stem}.parquet") if p.exists()]
    if not found:
        raise ExtractFileError(f"{stem}.csv: not found in the extract folder {folder.name}")
    if len(found) > 1:
        raise ExtractFileError(f"{stem}.csv and {stem}.parquet are both in {folder.name}: keep one")
    return found[0]


def _file(path: Path, kind: str) -> ExtractFile:
    return ExtractFile(path, kind, path.name, 2 if path.suffix == ".csv" else 1)
