"""Ingest: a period's extract in (canonical CSV/Parquet, FHIR or Synthea; a local folder or an
S3 prefix), every row validated, bad rows quarantined with their reasons, and the accepted rows
written in the canonical Parquet layout (`pipeline.storage`). `pipeline.ingest.run` describes
the two passes.

Each name loads its module on first use: the extract sensor, which only asks whether a period's
files have arrived, does not pay for pandas, pyarrow and the numba kernels that validation needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipeline.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from pipeline.ingest.reading import text_batches
    from pipeline.ingest.run import AccountingError, IngestResult, ingest
    from pipeline.ingest.sources import (
        ExtractFileError,
        ExtractSourceError,
        ExtractUnavailable,
        S3Location,
        canonical_extract,
        detect_format,
        fetch_period,
        list_periods,
        local_arrival,
        locate_period,
        make_client,
        open_extract,
        period_arrival,
    )

__all__ = [
    "AccountingError", "ExtractFileError", "ExtractSourceError", "ExtractUnavailable", "IngestResult",
    "S3Location", "canonical_extract", "detect_format", "fetch_period", "ingest", "list_periods",
    "local_arrival", "locate_period", "make_client", "open_extract", "period_arrival", "text_batches",
]

_MODULES = {
    "pipeline.ingest.run": ("AccountingError", "IngestResult", "ingest"),
    "pipeline.ingest.reading": ("text_batches",),
    "pipeline.ingest.sources": (
        "ExtractFileError", "ExtractSourceError", "ExtractUnavailable", "S3Location", "canonical_extract",
        "detect_format", "fetch_period", "list_periods", "local_arrival", "locate_period", "make_client",
        "open_extract", "period_arrival",
    ),
}
__getattr__ = lazy_exports(__name__, _MODULES)
