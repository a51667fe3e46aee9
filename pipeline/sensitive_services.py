"""The sensitive-services code list: which claims reveal a service that state laws keep off a
subscriber's statement (reproductive and sexual health, behavioural health, substance use,
gender-affirming care, intimate-partner violence).

The list is data a compliance team keeps (`templates/sensitive_services.csv`, one version per
file): each row names a category, a code system and an inclusive range of codes. Systems:

- `procedure`: CPT or HCPCS codes, five characters; a code matches a range of its own length;
- `diagnosis`: ICD-10-CM, written with or without the dot; a range is of code prefixes
  (`F10`–`F19` covers F10.20 and F19.9; `Z04.4` covers Z04.41 and Z04.42);
- `revenue`: UB-04 revenue codes, four digits (leading zeros may be left off);
- `place_of_service`: CMS place-of-service codes, two digits.

A code can fall in several categories; `categories` returns every one. Nothing here is PHI:
the list holds codes only, and errors name the file, row and field.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pipeline.templates import TEMPLATES_DIR

__all__ = ["SYSTEMS", "SensitiveServiceList", "SensitiveServicesError", "sensitive_services"]

SYSTEMS = ("procedure", "diagnosis", "revenue", "place_of_service")
_CATEGORY = re.compile(r"^[a-z][a-z_]*$")
_PATTERNS = {
    "procedure": re.compile(r"^[0-9A-Z][0-9]{3}[0-9A-Z]$"),
    "diagnosis": re.compile(r"^[A-Z][0-9][0-9A-Z][0-9A-Z]{0,4}$"),
    "revenue": re.compile(r"^[0-9]{4}$"),
    "place_of_service": re.compile(r"^[0-9]{2}$"),
}
_WIDTHS = {"revenue": 4, "place_of_service": 2}


class SensitiveServicesError(ValueError):
    """The sensitive-services list is malformed; the message names the file, row and field."""


def normalize(system: str, code: str) -> str:
    """A code as the list compares it: upper case, no dot, revenue and place of service padded."""
    value = code.strip().upper().replace(".", "")
    width = _WIDTHS.get(system)
    return value.zfill(width) if width and value.isdigit() else value


@dataclass(frozen=True, slots=True)
class _Range:
    category: str
    first: str
    last: str

    def holds(self, system: str, code: str) -> bool:
        if system == "diagnosis":  # a range of prefixes
            return self.first <= code[:len(self.first)] <= self.last
        return len(code) == len(self.first) and self.first <= code <= self.last


@dataclass(frozen=True, slots=True)
class SensitiveServiceList:
    """templates/sensitive_services.csv, loaded and checked."""

    version: str
    ranges: dict[str, tuple[_Range, ...]]

    @property
    def category_names(self) -> list[str]:
        return sorted({r.category for ranges in self.ranges.values() for r in ranges})

    def categories(self, *, procedure: str | None = None, diagnoses: Iterable[str] = (),
                   revenue: str | None = None, place_of_service: str | None = None) -> frozenset[str]:
        """Every category one claim line's codes fall in (empty: not a sensitive service)."""
        found: set[str] = set()
        codes = [("procedure", procedure), ("revenue", revenue),
                 ("place_of_service", place_of_service),
                 *(("diagnosis", code) for code in diagnoses)]
        for system, code in codes:
            if code:
                found |= self._of(system, normalize(system, code))
        return frozenset(found)

    def _of(self, system: str, code: str) -> set[str]:
        return {r.category for r in self.ranges[system] if r.holds(system, code)}


def _range(path: Path, number: int, row: dict[str, str]) -> tuple[str, _Range]:
    where = f"{path.name}: row {number}"
    system, category = row["system"].strip(), row["category"].strip()
    if system not in SYSTEMS:
        raise SensitiveServicesError(f"{where}, field system: {system!r} is not one of {', '.join(SYSTEMS)}")
    if not _CATEGORY.match(category):
        raise SensitiveServicesError(f"{where}, field category: {category!r} is not a lower-case name")
    first, last = normalize(system, row["first"]), normalize(system, row["last"])
    for field, value in (("first", first), ("last", last)):
        if not _PATTERNS[system].match(value):
            raise SensitiveServicesError(f"{where}, field {field}: {row[field]!r} is not a {system} code")
    if len(first) != len(last) or first > last:
        raise SensitiveServicesError(f"{where}, fields first/last: {row['first']!r}–{row['last']!r} "
                                     "is not a range of codes of one length, first to last")
    return system, _Range(category, first, last)


@cache
def sensitive_services(path: Path = TEMPLATES_DIR / "sensitive_services.csv") -> SensitiveServiceList:
    """The list, read once per process; SensitiveServicesError when a row is malformed."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    missing = {"list_version", "category", "system", "first", "last"} - set(rows[0] if rows else {})
    if missing:
        raise SensitiveServicesError(f"{path.name}: no rows, or no column {', '.join(sorted(missing))}")
    versions = {row["list_version"] for row in rows}
    if len(versions) != 1:
        raise SensitiveServicesError(f"{path.name}: rows carry several list versions {sorted(versions)}")
    ranges: dict[str, list[_Range]] = {system: [] for system in SYSTEMS}
    for number, row in enumerate(rows, start=2):
        system, found = _range(path, number, row)
        ranges[system].append(found)
    return SensitiveServiceList(versions.pop(), {s: tuple(r) for s, r in ranges.items()})
