"""The fast pattern checks say exactly what the regular-expression engine says."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.ingest.patterns import ADJUSTMENTS_PATTERN, MONEY_PATTERN, _compile, matches
from pipeline.ingest.schema import SCHEMA_PATH

ALPHABET = st.sampled_from(list("0123456789.-_:aZz AzQ9\n\t+e,é€") + ["", "12", "CO-", "PR-", "00"])
TEXT = st.lists(ALPHABET, max_size=18).map("".join)


def _schema_patterns() -> list[str]:
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str):
                    found.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    return sorted(found | {r"^\d{1,9}$", MONEY_PATTERN})


PATTERNS = _schema_patterns()


def test_the_schema_patterns_mostly_take_the_fast_paths() -> None:
    fast = [p for p in PATTERNS if p in (MONEY_PATTERN, ADJUSTMENTS_PATTERN) or _compile(p) is not None]
    assert MONEY_PATTERN in fast and r"^\d{10}$" in fast and r"^[A-Z]{2}$" in fast
    assert ADJUSTMENTS_PATTERN in fast  # a value per line, nearly all distinct: its own kernel
    # postal code, reason code, date and the diagnosis list use the engine (the diagnosis list is
    # read as a dictionary, so it runs once per distinct list)
    assert len(fast) >= len(PATTERNS) - 4


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=40), st.sampled_from(PATTERNS), st.integers(0, 3))
def test_matches_agrees_with_re2(values: list[str], pattern: str, skip: int) -> None:
    array = pa.array(values, pa.string()).slice(min(skip, len(values) - 1))  # sliced arrays too
    expected = pc.match_substring_regex(array, pattern).to_pylist()
    assert matches(array, pattern).tolist() == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**12 - 1), st.sampled_from(["", ".5", ".05", ".123", "."]),
       st.sampled_from(["", "-", " "]))
def test_money_shape_agrees_with_re2(whole: int, fraction: str, prefix: str) -> None:
    text = f"{prefix}{whole}{fraction}"
    array = pa.array([text, "", "1" * 13, "1" * 12 + ".99"])
    expected = pc.match_substring_regex(array, MONEY_PATTERN).to_pylist()
    assert matches(array, MONEY_PATTERN).tolist() == expected


ENTRY_PARTS = st.sampled_from(["CO", "PR", "oa", "P", "-", "45", "2", "A1B2C", ":", "120", ".00", ".5",
                                ".123", "1234567890123", "N115", "MA130XYZ", ";", "", " ", "\n"])
ENTRIES = st.lists(ENTRY_PARTS, max_size=14).map("".join)
GOOD_ENTRY = st.builds("{}{}-{}:{}{}{}".format, st.sampled_from("COPRAI"), st.sampled_from("OIRA"),
                       st.from_regex(r"[A-Z0-9]{1,5}", fullmatch=True),
                       st.from_regex(r"[0-9]{1,13}", fullmatch=True),
                       st.sampled_from(["", ".1", ".25", ".", ".123"]),
                       st.sampled_from(["", ":N1", ":M1234567", ":ABCDEFGH", ":"]))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(ENTRIES, st.lists(GOOD_ENTRY, min_size=1, max_size=52).map(";".join)),
                min_size=1, max_size=20), st.integers(0, 3))
def test_adjustments_shape_agrees_with_re2(values: list[str], skip: int) -> None:
    """The adjustments list is checked by its own kernel (column_kernels.adjustments_shapes)."""
    array = pa.array(values, pa.string()).slice(min(skip, len(values) - 1))
    expected = pc.match_substring_regex(array, ADJUSTMENTS_PATTERN).to_pylist()
    assert matches(array, ADJUSTMENTS_PATTERN).tolist() == expected


def test_the_adjustments_kernel_checks_the_schemas_pattern() -> None:
    assert ADJUSTMENTS_PATTERN in PATTERNS
    fifty = ";".join(["CO-45:1.00"] * 50)
    values = pa.array([fifty, fifty + ";PR-2:3", "CO-45:1.00;", "co-45:1"])
    assert matches(values, ADJUSTMENTS_PATTERN).tolist() == [True, False, False, False]


def test_chunked_and_null_values_take_the_engine_path() -> None:
    chunked = pa.chunked_array([["AB", None], ["C1"]])
    assert matches(chunked, r"^[A-Z]{2}$").tolist() == [True, False, False]
