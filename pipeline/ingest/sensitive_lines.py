"""Which claim lines are sensitive services, from their codes (pass 1, per batch).

Only the answer is kept (`sensitive` on the canonical line): the diagnosis, revenue and
place-of-service codes that gave it are read here and dropped, since no statement prints them.
Codes repeat, so each distinct value is classified once (and remembered across batches).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ingest.checks import per_value
from pipeline.sensitive_services import sensitive_services

__all__ = ["CODE_COLUMNS", "sensitive_flags"]

CODE_COLUMNS = {"service_code": "procedure", "diagnosis_codes": "diagnosis", "revenue_code": "revenue",
                "place_of_service": "place_of_service"}
"""The claim columns the sensitive-services list is matched against, and each one's code system."""


@lru_cache(maxsize=65_536)
def _is_sensitive(system: str, value: str) -> bool:
    if not value:
        return False
    services = sensitive_services()
    if system == "diagnosis":
        return bool(services.categories(diagnoses=value.split(";")))
    return bool(services.categories(**{system: value}))


def _classifier(system: str):  # type: ignore[no-untyped-def]
    def classify(values: pa.Array) -> np.ndarray:
        return np.fromiter((_is_sensitive(system, v) for v in values.to_pylist()), bool, len(values))
    return classify


def sensitive_flags(typed: dict[str, pa.Array]) -> pa.Array:
    """One flag per row: does any of the row's codes fall in a sensitive-services category?"""
    flags: np.ndarray | None = None
    for name, system in CODE_COLUMNS.items():
        value = typed[name]
        if isinstance(value, pa.ChunkedArray):
            value = value.combine_chunks()
        if not pa.types.is_dictionary(value.type):
            value = pc.dictionary_encode(value)  # classify each distinct code once
        hit = per_value(value, _classifier(system))
        flags = hit if flags is None else flags | hit
    assert flags is not None
    return pa.array(flags, pa.bool_())
