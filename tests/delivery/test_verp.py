"""Signed VERP tokens: a bounce names its statement and cannot be forged."""

from __future__ import annotations

import re

import pytest

from pipeline.delivery.verp import (
    ForgedToken,
    make_token,
    return_path,
    statement_from_address,
    verify_token,
)

SECRET = "verp-secret"
SID = "st-2026-11-0f3a9c2b7d1e"


def test_round_trip() -> None:
    token = make_token(SID, SECRET)
    assert token.startswith(f"{SID}.")
    assert re.fullmatch(r"[A-Za-z0-9._=-]+", token)
    assert verify_token(token, SECRET) == SID


def test_return_path_shape_and_parse_back() -> None:
    address = return_path(SID, SECRET, "bounces.eob.example")
    assert address == f"bounces+{make_token(SID, SECRET)}@bounces.eob.example"
    assert statement_from_address(f"<{address}>", SECRET) == SID
    # MTAs may fold the case of the prefix and signature; the statement id keeps its case here.
    local, _, domain = address.partition("@")
    prefix, _, token = local.partition("+")
    sid, _, sig = token.rpartition(".")
    assert statement_from_address(f"{prefix.upper()}+{sid}.{sig.upper()}@{domain}", SECRET) == SID


@pytest.mark.parametrize("position", [3, -1, -5, len(SID) + 2])
def test_tampered_token_is_refused(position: int) -> None:
    token = make_token(SID, SECRET)
    index = position % len(token)
    flipped = "a" if token[index].lower() != "a" else "b"
    tampered = token[:index] + flipped + token[index + 1 :]
    with pytest.raises(ForgedToken):
        verify_token(tampered, SECRET)


def test_token_for_one_statement_does_not_verify_as_another() -> None:
    signature = make_token(SID, SECRET).rpartition(".")[2]
    with pytest.raises(ForgedToken):
        verify_token(f"st-2026-11-000000000001.{signature}", SECRET)


def test_other_secret_and_garbage_are_refused() -> None:
    with pytest.raises(ForgedToken):
        verify_token(make_token(SID, SECRET), "another-secret")
    for junk in ("", SID, f"{SID}.", ".abc", "st 1.abc", "x@y.abc"):
        with pytest.raises(ForgedToken):
            verify_token(junk, SECRET)
    with pytest.raises(ForgedToken):
        statement_from_address("postmaster@bounces.eob.example", SECRET)


def test_forged_token_is_a_value_error() -> None:
    assert issubclass(ForgedToken, ValueError)


def test_bad_statement_id_is_refused_when_making() -> None:
    with pytest.raises(ValueError):
        make_token("st_2026.11", SECRET)
