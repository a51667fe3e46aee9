"""Errors a whole extract file can raise; shared by the readers and by ingest."""

from __future__ import annotations

import re


class ExtractFileError(ValueError):
    """A whole file cannot be read; the message names the file and what is wrong with it.

    Never put file content in the message: rows carry PHI. Name the file, the row number or
    the field, and the problem.
    """


class ExtractSourceError(ExtractFileError):
    """The extract location itself is unusable (no such folder or S3 prefix, nothing in it)."""


class ExtractUnavailable(RuntimeError):
    """The extract could not be fetched this time (S3 timed out, a connection failed or dropped,
    S3 throttled or had a server error, an object changed while it was downloaded): unlike an
    ExtractFileError, a retry may succeed. The message names the bucket and key, never content."""


def arrow_reason(exc: BaseException) -> str:
    """A reason without file content: Arrow's CSV messages quote the offending row (PHI)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, UnicodeDecodeError) or "UTF8" in text or "utf-8" in text.lower():
        return "the file is not UTF-8 text"
    counted = re.match(r"^(CSV parse error: Expected \d+ columns, got \d+)", text)
    if counted:
        return counted.group(1)
    if "CSV" in text:
        return f"CSV parse error ({type(exc).__name__})"
    if "Parquet" in text or "parquet" in text or "magic" in text.lower():
        return "not a readable Parquet file"
    return f"unreadable ({type(exc).__name__})"
