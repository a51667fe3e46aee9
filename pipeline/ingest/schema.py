"""The extract's schema (extract_schema.json): its files, their columns and the rules that
check them; docs/extract-format.md describes it for the insurers who deliver extracts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

__all__ = ["LOW_CARDINALITY", "SCHEMA_PATH", "Column", "FileSpec", "extract_schema", "file_spec"]

SCHEMA_PATH = Path(__file__).with_name("extract_schema.json")
LOW_CARDINALITY = frozenset({"patient_relationship", "provider_name", "provider_npi", "network",
                             "service_code", "service_description", "status", "reason_code",
                             "diagnosis_codes", "revenue_code", "place_of_service"})
"""Claim columns with few distinct values: read from CSV as dictionaries, so their checks and
hashes run once per distinct value and Parquet gets them already dictionary-encoded."""


@dataclass(frozen=True, slots=True)
class Column:
    """One column of an extract file and what a valid value looks like."""

    name: str
    type: str  # string, enum, date, money, integer
    required: bool
    optional_column: bool = False
    pattern: str | None = None
    values: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class FileSpec:
    """One kind of extract file (plans, members, claims): its columns and its rules."""

    kind: str
    columns: tuple[Column, ...]
    rules: dict[str, tuple[str, str]]  # rule id -> (field, reason)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if not c.optional_column]

    def rule(self, rule_id: str) -> tuple[str, str]:
        return self.rules[rule_id]


@cache
def extract_schema() -> dict:  # type: ignore[type-arg]
    """extract_schema.json as parsed, read once per process."""
    with SCHEMA_PATH.open(encoding="utf-8") as handle:
        return json.load(handle)  # type: ignore[no-any-return]


@cache
def file_spec(kind: str) -> FileSpec:
    raw = extract_schema()
    spec = raw["files"][kind]
    rules = {r["id"]: (r["field"], r["reason"])
             for r in [*spec.get("rules", []), *raw.get(f"{kind[:-1]}_rules", [])]}
    columns = tuple(Column(
        name=c["name"], type=c["type"], required=c["required"],
        optional_column=c.get("optional_column", False), pattern=c.get("pattern"),
        values=tuple(c.get("values", ())), minimum=c.get("min"), maximum=c.get("max"),
        reason=c.get("reason")) for c in spec["columns"])
    return FileSpec(kind, columns, rules)

