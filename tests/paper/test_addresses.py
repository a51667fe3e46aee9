"""What the print vendor gets as an address block, and what support sees when one is refused."""

from __future__ import annotations

import logging
import tomllib
import traceback
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

import pipeline.paper.addresses as addresses
from pipeline.paper.addresses import AddressProblem, AddressReason, MailingAddress, prepare_address

CANARY = "CANARY-Zebedee"


def _lines(name: str, line1: str, line2: str | None, city: str, state: str, zip_code: str,
           **limits: int) -> tuple[str, ...]:
    return prepare_address(name, line1, line2, city, state, zip_code, **limits).lines


def test_the_apartment_on_line_2_moves_onto_the_street_line() -> None:
    address = prepare_address("Maria  Lopez", "1458 Oak Street", "Apt 4B", "Des Moines", "ia",
                              "50309-2714")
    assert address == MailingAddress(
        lines=("MARIA LOPEZ", "1458 OAK ST APT 4B", "DES MOINES IA 50309-2714"),
        city="DES MOINES", state="IA", zip5="50309", zip4="2714")
    assert address.routing_zip == "503092714"


@pytest.mark.parametrize(("line1", "line2", "delivery"), [
    ("123 North Main Street", None, "123 N MAIN ST"),
    ("1600 Pennsylvania Avenue Northwest", None, "1600 PENNSYLVANIA AVE NW"),
    ("500 W. Elm Avenue, Suite 200", None, "500 W ELM AVE STE 200"),
    ("77 Lakeshore Boulevard", "Building C, Floor 3", "77 LAKESHORE BLVD BLDG C FL 3"),
    ("9 Sunset Terrace", "Apartment #12", "9 SUNSET TER APT 12"),
    ("9 Sunset Terrace #12", None, "9 SUNSET TER # 12"),
    ("Unit 7", "31 Harbor View Drive", "31 HARBOR VIEW DR UNIT 7"),
    ("4 East 42nd St.", "Room 210", "4 E 42ND ST RM 210"),
    ("12 Avenue B", None, "12 AVENUE B"),
    ("88 Old Mill Parkway", "Trailer 9", "88 OLD MILL PKWY TRLR 9"),
])
def test_street_lines_are_written_as_publication_28_writes_them(line1: str, line2: str | None,
                                                                delivery: str) -> None:
    assert _lines("Ann Lee", line1, line2, "Brooklyn", "NY", "11201")[1] == delivery


@pytest.mark.parametrize(("line1", "state", "zip_code", "delivery", "last"), [
    ("P.O. Box 4567", "IL", "62704", "PO BOX 4567", "SPRINGFIELD IL 62704"),
    ("Post Office Box 12", "IL", "62704-0012", "PO BOX 12", "SPRINGFIELD IL 62704-0012"),
    ("RR 2 Box 15", "ME", "04930", "RR 2 BOX 15", "SPRINGFIELD ME 04930"),
    ("PSC 1234 Box 5678", "AE", "09021", "PSC 1234 BOX 5678", "SPRINGFIELD AE 09021"),
])
def test_boxes_are_printed_as_usps_writes_them(line1: str, state: str, zip_code: str,
                                               delivery: str, last: str) -> None:
    assert _lines("Ann Lee", line1, None, "Springfield", state, zip_code)[1:] == (delivery, last)


def test_a_care_of_line_prints_under_the_name_whichever_line_it_was_on() -> None:
    on_line1 = _lines("Ann Lee", "c/o Robert Lee", "742 Evergreen Terrace", "Springfield", "OR",
                      "97477")
    on_line2 = _lines("Ann Lee", "742 Evergreen Terrace", "C/O Robert Lee", "Springfield", "OR",
                      "97477")
    assert on_line1 == on_line2 == ("ANN LEE", "C/O ROBERT LEE", "742 EVERGREEN TER",
                                    "SPRINGFIELD OR 97477")
    assert _lines("Ann Lee", "742 Evergreen Terrace", "Attention: Billing", "Springfield", "OR",
                  "97477")[1] == "ATTN BILLING"


@pytest.mark.parametrize(("state", "zip_code"), [
    ("NY", "00501"), ("MA", "05501"), ("VA", "20101"), ("DC", "20500"), ("TX", "73301"),
    ("TX", "88510"), ("PR", "00901"), ("VI", "00802"), ("GU", "96910"), ("AS", "96799"),
    ("HI", "96813"), ("AK", "99501"), ("AA", "34001"), ("AP", "96201"), ("GA", "39901"),
])
def test_zips_outside_their_states_main_block_are_still_accepted(state: str, zip_code: str) -> None:
    assert prepare_address("Ann Lee", "1 Main St", None, "Anytown", state, zip_code).state == state


def _problem(name: str = "Ann Lee", line1: str = "1458 Oak Street", line2: str | None = None,
             city: str = "Des Moines", state: str = "IA", zip_code: str = "50309",
             **limits: int) -> AddressProblem:
    with pytest.raises(AddressProblem) as caught:
        prepare_address(name, line1, line2, city, state, zip_code, **limits)
    return caught.value


@pytest.mark.parametrize(("kwargs", "reason", "field"), [
    ({"name": "  "}, "incomplete", "name"),
    ({"line1": ""}, "incomplete", "line1"),
    ({"city": ""}, "incomplete", "city"),
    ({"zip_code": ""}, "incomplete", "zip_code"),
    ({"state": "Iowa"}, "unparseable", "state"),
    ({"zip_code": "5030"}, "unparseable", "zip_code"),
    ({"line1": "Oak and 5th"}, "unparseable", "street (line1)"),
    ({"line2": "Apt 4 Apt 5"}, "unparseable", "street (line1/line2)"),
    ({"line1": "1458 Oak Street Des Moines"}, "unparseable", "street (line1)"),
    ({"state": "ON", "zip_code": "M5V 3L9"}, "not_domestic", "state"),
    ({"zip_code": "M5V 3L9"}, "not_domestic", "zip_code"),
    ({"zip_code": "10001"}, "state_zip_mismatch", "zip_code"),
    ({"state": "VT", "zip_code": "05501"}, "state_zip_mismatch", "zip_code"),
    ({"city": "Llanfairpwllgwyngyll Gogerychwyrndrobwll"}, "too_long", "last line"),
    ({"line2": "Attn: Accounts Payable"}, "too_many_lines", "address block"),
])
def test_each_refusal_names_its_reason_and_field(kwargs: dict[str, Any], reason: str,
                                                 field: str) -> None:
    problem = _problem(**kwargs, max_lines=3 if reason == "too_many_lines" else 5)
    assert (problem.reason, problem.field) == (AddressReason(reason), field)
    assert str(problem).startswith(f"mailing address refused ({reason}): {field} ")
    assert "re-queue" in str(problem)


def test_a_long_name_is_refused_not_cut() -> None:
    name = "Maximiliana Bartholomew-Featherstonehaugh Jr"
    assert len(name) == 44
    problem = _problem(name=name)
    assert (problem.reason, problem.field) == ("too_long", "recipient name")
    assert "44 characters" in str(problem) and "limit of 40" in str(problem)
    assert _lines(name, "1458 Oak Street", None, "Des Moines", "IA", "50309",
                  max_chars=45)[0] == name.upper()


def test_the_longest_line_allowed_is_printed_whole() -> None:
    name = "A" * 40
    assert _lines(name, "1 Main St", None, "Des Moines", "IA", "50309")[0] == name


@pytest.mark.parametrize("kwargs", [
    {"name": f"{CANARY} Featherstonehaugh-Worthington III"},
    {"line1": f"1458 {CANARY} Street", "line2": "Apt 4 Apt 5"},
    {"line1": f"1458 {CANARY} Street", "zip_code": "10001"},
    {"line1": f"1458 {CANARY} Street Springfield"},
    {"line1": f"{CANARY} and 5th"},
    {"city": f"{CANARY}", "state": "ZZ"},
    {"line2": f"Attn {CANARY}", "max_lines": 3},
])
def test_a_refusal_never_repeats_the_address(kwargs: dict[str, str | int],
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    args: dict[str, str | None] = {"name": "Ann Lee", "line1": "1458 Oak Street", "line2": None,
                                   "city": "Des Moines", "state": "IA", "zip_code": "50309"}
    limits = {"max_lines": int(kwargs.pop("max_lines"))} if "max_lines" in kwargs else {}
    args.update({key: str(value) for key, value in kwargs.items()})
    with pytest.raises(AddressProblem) as caught:
        prepare_address(args["name"] or "", args["line1"] or "", args["line2"],
                        args["city"] or "", args["state"] or "", args["zip_code"] or "", **limits)
    shown = "".join(traceback.format_exception(caught.value)) + caplog.text
    for secret in (CANARY, "Zebedee", "1458", "Des Moines", "50309", "Oak"):
        assert secret.lower() not in shown.lower()


def test_the_zip_prefix_table_gives_each_prefix_to_one_state_but_the_shared_pacific_ones() -> None:
    table = tomllib.loads(Path(addresses.__file__).with_name("zip_prefixes.toml").read_text())
    owners: defaultdict[int, set[str]] = defaultdict(set)
    for state, ranges in table["prefixes"].items():
        for item in ranges:
            low, _, high = item.partition("-")
            assert len(low) == 3 and int(low) <= int(high or low), (state, item)
            for prefix in range(int(low), int(high or low) + 1):
                owners[prefix].add(state)
    shared = {prefix: states for prefix, states in owners.items() if len(states) > 1}
    assert shared == {967: {"HI", "AS"}, 969: {"GU", "MP", "PW", "FM", "MH"}}
    assert len(table["prefixes"]) == 50 + 1 + 8 + 3  # states, DC, territories, military
