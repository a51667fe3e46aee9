"""The compiled byte scans say exactly what Python, Decimal and the calendar say, and the
hashes never change (they decide shards and whether a re-run's statement is a new version)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.column_kernels import (
    CENTS_MALFORMED,
    CENTS_NEGATIVE,
    CENTS_OK,
    EMAIL_PATTERN,
    civil_dates,
    dollars_to_cents,
    domain_array,
    edges_may_need_trim,
    email_shapes,
    hash_values,
    string_buffers,
)
from pipeline.deadlines import NoticeRule
from pipeline.ingest.patterns import MONEY_PATTERN
from pipeline.periods import statement_date

NOTICES = NoticeRule.leaving_on(30, statement_date("2026-11"))  # leaving on the statement date

MASK = (1 << 64) - 1
P1, P2, P3 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB
AMOUNT = st.one_of(
    st.decimals(min_value=0, max_value=Decimal("999999999999.99"), places=2).map(str),
    st.decimals(min_value=0, max_value=Decimal("99999999999.9"), places=1).map(str),
    st.integers(min_value=0, max_value=10**13).map(str),
    st.lists(st.sampled_from(list("0123456789.-+ e,$")), max_size=16).map("".join),
)
DATE_TEXT = st.one_of(
    st.dates(min_value=date(1, 1, 1)).map(date.isoformat),
    st.tuples(st.integers(0, 9999), st.integers(0, 19), st.integers(0, 39)).map(
        lambda t: f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}"),
    st.text(alphabet="0123456789-/ x", max_size=12),
)


def reference_hash(text: str) -> int:
    """The hash as documented: length-seeded, eight little-endian bytes at a time, splitmix end."""
    data = text.encode("utf-8")
    h = ((len(data) + 0x51ED2701) * P1) & MASK
    for k in range(0, len(data), 8):
        h = ((h ^ int.from_bytes(data[k:k + 8], "little")) * P1) & MASK
        h ^= h >> 29
    h = ((h ^ (h >> 30)) * P2) & MASK
    h = ((h ^ (h >> 27)) * P3) & MASK
    return h ^ (h >> 31)


def scan(kernel, values: list[str]):  # type: ignore[no-untyped-def]
    return kernel(*string_buffers(pa.array(values, pa.string())))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=40), max_size=30))
def test_hash_matches_the_documented_algorithm(values: list[str]) -> None:
    assert [int(h) for h in scan(hash_values, values)] == [reference_hash(v) for v in values]


def test_hash_of_a_sliced_array_reads_only_its_values() -> None:
    values = pa.array(["skip me", "M000000001", "é" * 9])
    assert [int(h) for h in hash_values(*string_buffers(values.slice(1)))] == [
        16957684105920313870, reference_hash("é" * 9)]


@settings(max_examples=300, deadline=None)
@given(st.lists(AMOUNT, max_size=30))
def test_cents_are_exact_and_only_for_the_money_pattern(values: list[str]) -> None:
    cents, codes = scan(dollars_to_cents, values)
    for value, cent, code in zip(values, cents.tolist(), codes.tolist(), strict=True):
        if re.fullmatch(MONEY_PATTERN[1:-1], value):
            assert (code, cent) == (CENTS_OK, int(Decimal(value) * 100)), value
        elif value:
            assert code == (CENTS_NEGATIVE if value.startswith("-") else CENTS_MALFORMED), value
            assert cent == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(DATE_TEXT, max_size=30))
def test_dates_are_real_calendar_days(values: list[str]) -> None:
    days, real = scan(civil_dates, values)
    for value, day, ok in zip(values, days.tolist(), real.tolist(), strict=True):
        shaped = re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is not None
        if shaped and value[:4] == "0000":  # year 0 is proleptic-real; the schema's minimum rejects it
            continue
        try:
            expected = (date.fromisoformat(value) - date(1970, 1, 1)).days if shaped else None
        except ValueError:
            expected = None
        assert (day if ok else None) == expected, value


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=" \tab\u00e9\u00a0\x1f~", max_size=5), max_size=10))
def test_trim_is_skipped_only_when_no_edge_could_be_whitespace(values: list[str]) -> None:
    def risky(byte: int) -> bool:
        return byte <= 32 or byte >= 127

    expected = any(risky(v.encode()[0]) or risky(v.encode()[-1]) for v in values if v)
    assert bool(scan(edges_may_need_trim, values)) == expected


def test_kernels_accept_an_array_without_a_data_buffer() -> None:
    empty = pa.array(["", ""], pa.string())
    assert scan(hash_values, ["", ""]).tolist() == [reference_hash("")] * 2
    assert dollars_to_cents(*string_buffers(empty))[1].tolist() == [1, 1]
    assert not edges_may_need_trim(*string_buffers(empty))
    assert civil_dates(*string_buffers(pa.array([], pa.string())))[0].dtype == np.int32


EMAIL_TEXT = st.one_of(
    st.emails().map(str),
    st.lists(st.sampled_from([*"aZ09._%+'-@..@éx ", "example", ".com", "@@"]), max_size=12).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(EMAIL_TEXT, max_size=20))
def test_email_shapes_match_the_pattern(values: list[str]) -> None:
    expected = [re.fullmatch(EMAIL_PATTERN[1:-1], v) is not None for v in values]
    assert scan(email_shapes, values).tolist() == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(EMAIL_TEXT, max_size=20))
def test_email_domains_are_the_text_after_the_last_at_lowered(values: list[str]) -> None:
    domains = domain_array(pa.array(values, pa.string())).to_pylist()
    expected = [re.sub(r"^.*@", "", v, flags=re.DOTALL) for v in values]
    assert domains == ["".join(c.lower() if c.isascii() else c for c in e) for e in expected]


def test_load_kernels_covers_every_type_ingest_and_compose_pass(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The ingest benchmark loads the kernels before its timer: if a run then met a new argument
    type, numba would compile (or load) it inside the timed work and the figure would be off."""
    import numba.core.dispatcher

    from pipeline import column_kernels
    from pipeline.compose import compose_shard
    from pipeline.demo.generate import generate_extract
    from pipeline.ingest import ingest

    column_kernels.load_kernels()
    kernels = {name: k for name, k in vars(column_kernels).items()
               if isinstance(k, numba.core.dispatcher.Dispatcher)}
    before = {name: len(k.overloads) for name, k in kernels.items()}
    extract = generate_extract(tmp_path / "in", members=300, period="2026-11", seed=5, claim_files=2).folder
    ingest(extract, tmp_path / "out", 2, period="2026-11")
    statements = sum(s.num_rows for shard in range(2)
                     for s in compose_shard(tmp_path / "out", shard, "2026-11", notices=NOTICES))
    assert statements > 250
    assert {name: len(k.overloads) for name, k in kernels.items()} == before
