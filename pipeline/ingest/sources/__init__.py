"""Where a period's claim extract comes from, and in which format.

Three formats reach ingest through one shape, `Extract`: the canonical CSV/Parquet files
(docs/extract-format.md) are read as they are; FHIR ExplanationOfBenefit resources (CARIN Blue
Button; NDJSON bulk export or Bundles) and Synthea CSV output are first mapped, streaming, onto
the canonical columns in the run's work folder, so one validator judges every row the same way
and quarantine rows still name the file the insurer delivered. A local folder or an S3 prefix
(see `pipeline.ingest.sources.s3`) holds the files; `arrival` tells whether a period's files
have finished arriving.
"""

from pipeline.ingest.sources.arrival import Arrival, local_arrival
from pipeline.ingest.sources.discovery import (
    FORMATS,
    canonical_extract,
    detect_format,
    locate_period,
    open_extract,
)
from pipeline.ingest.sources.errors import (
    ExtractFileError,
    ExtractSourceError,
    ExtractUnavailable,
    arrow_reason,
)
from pipeline.ingest.sources.extract import Extract, ExtractFile
from pipeline.ingest.sources.s3 import S3Location, fetch_period, list_periods, make_client, period_arrival

__all__ = [
    "FORMATS", "Arrival", "Extract", "ExtractFile", "ExtractFileError", "ExtractSourceError",
    "ExtractUnavailable", "S3Location", "arrow_reason", "canonical_extract", "detect_format",
    "fetch_period", "list_periods", "local_arrival", "locate_period", "make_client", "open_extract",
    "period_arrival",
]
