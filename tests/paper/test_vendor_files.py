"""Reading what the print vendor sends back: acknowledgements and tracking files as the vendor
writes them, a bad value set aside with its row and column while the good rows are kept, a file
that is not the agreed table refused whole, and a member's details never in a message or log."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from pipeline.paper.vendor_files import (
    WHOLE_ROW,
    AckRow,
    RowProblem,
    TrackingRow,
    VendorFileError,
    classify_vendor_file,
    parse_ack,
    parse_tracking,
)

ACK = "EOB-20261206-FIRST-001.ack.csv"
TRACKING = "tracking-20261207-001.csv"
ACK_HEADER = "statement_id,sequence,status,pages,reason"
TRACKING_HEADER = "statement_id,imb_serial,event,event_date,new_address"
CANARY_ADDRESS = "ZEBEDEE CANARYPHI | 77 CANARYWHARF LN | SPRINGFIELD IL 62704"
CANARY_REASON = "Zebedee Canaryphi phoned: moved to 77 Canarywharf Lane"
CANARY_WORDS = ["Zebedee", "ZEBEDEE", "Canaryphi", "CANARYPHI", "Canarywharf", "CANARYWHARF"]


def csv_bytes(*lines: str, end: str = "\r\n") -> bytes:
    return (end.join(lines) + end).encode("utf-8")


def test_an_acknowledgement_as_the_vendor_writes_it() -> None:
    data = csv_bytes(ACK_HEADER, "s-1,1,accepted,2,", "s-2,2,rejected,4,\"torn, refed twice\"",
                     "s-3,3,accepted,1,")
    ack = parse_ack(b"\xef\xbb\xbf" + data, ACK)  # a spreadsheet's byte-order mark is fine
    assert ack.batch == "EOB-20261206-FIRST-001"
    assert ack.rows == (AckRow("s-1", 1, "accepted", 2), AckRow("s-2", 2, "rejected", 4, "torn, refed twice"),
                        AckRow("s-3", 3, "accepted", 1))
    assert ack.problems == ()


def test_a_tracking_file_with_every_event_and_a_forwarding_address() -> None:
    data = csv_bytes(TRACKING_HEADER, "s-1,000000001,mailed,2026-12-07,",
                     "s-1,000000001,in_transit,2026-12-08,",
                     "s-1,000000001,processed_for_delivery,2026-12-09,",
                     "s-1,000000001,delivered,2026-12-10,",
                     "s-2,000002,returned_to_sender,2026-12-12,",
                     "s-3,000000003,forwarded,2026-12-11,NEW NAME | 1 FORWARD ST | SPRINGFIELD IL 62704",
                     "s-4,000000004,forwarded,2026-12-11,", end="\n")
    tracking = parse_tracking(data, f"outbound/{TRACKING}")
    assert tracking.problems == ()
    assert [row.event for row in tracking.rows] == [
        "mailed", "in_transit", "processed_for_delivery", "delivered", "returned_to_sender", "forwarded",
        "forwarded"]
    assert tracking.rows[4] == TrackingRow("s-2", "000002", "returned_to_sender", date(2026, 12, 12))
    assert tracking.rows[5].new_address == ("NEW NAME", "1 FORWARD ST", "SPRINGFIELD IL 62704")
    assert tracking.rows[6].new_address == (), "forwarded, but the vendor was not told where"


def test_a_header_only_file_has_no_rows() -> None:
    rows, problems = parse_tracking(csv_bytes(TRACKING_HEADER), TRACKING)
    assert rows == () and problems == ()


@pytest.mark.parametrize(("name", "kind"), [
    ("EOB-20261206-FIRST-001.ack.csv", "ack"), ("outbound/EOB-20261206-STANDARD-004.ack.csv", "ack"),
    ("tracking-20261207-001.csv", "tracking"), ("tracking-20261207-1.csv", None),
    (".EOB-20261206-FIRST-001.ack.csv.part", None), (".tracking-20261207-001.csv", None),
    ("EOB-20261206-FIRST-001.manifest.csv", None), (".ack.csv", None), ("mail-dates.csv", None),
])
def test_files_are_told_apart_by_name(name: str, kind: str | None) -> None:
    assert classify_vendor_file(name) == kind


@pytest.mark.parametrize(("line", "field"), [
    (",2,accepted,1,", "statement_id"),
    ("Ann Smith,2,accepted,1,", "statement_id"),
    ("s-2,0,accepted,1,", "sequence"),
    ("s-2,two,accepted,1,", "sequence"),
    ("s-2,-2,accepted,1,", "sequence"),
    ("s-2,2.0,accepted,1,", "sequence"),
    ("s-2,2,printed,1,", "status"),
    ("s-2,2,Accepted,1,", "status"),
    ("s-2,2,accepted,0,", "pages"),
    ("s-2,2,accepted,,", "pages"),
    ("s-2,2,rejected,1,", "reason"),
    ("s-2,2,rejected,1,  ", "reason"),
    (f"s-2,2,rejected,1,{'x' * 201}", "reason"),
    ("s-2,2,accepted,1", WHOLE_ROW),
    ("s-2,2,rejected,1,torn,refed", WHOLE_ROW),
])
def test_each_bad_ack_value_is_set_aside_with_its_row_and_column(line: str, field: str) -> None:
    data = csv_bytes(ACK_HEADER, "s-1,1,accepted,2,", line, "s-3,3,accepted,1,")
    ack = parse_ack(data, ACK)
    assert [row.statement_id for row in ack.rows] == ["s-1", "s-3"], "the good rows are kept"
    assert [(p.row, p.field) for p in ack.problems] == [(2, field)]
    described = ack.problems[0].describe(ACK)
    assert described.startswith(f"{ACK} row 2") and "ask the vendor" in described
    assert (f"column {field}" in described) == (field != WHOLE_ROW)


@pytest.mark.parametrize(("line", "field"), [
    (",000000001,mailed,2026-12-07,", "statement_id"),
    ("s-1,,mailed,2026-12-07,", "imb_serial"),
    ("s-1,12345,mailed,2026-12-07,", "imb_serial"),
    ("s-1,00000000A,mailed,2026-12-07,", "imb_serial"),
    ("s-1,000000001,lost,2026-12-07,", "event"),
    ("s-1,000000001,mailed,2026-02-30,", "event_date"),
    ("s-1,000000001,mailed,20261207,", "event_date"),
    ("s-1,000000001,mailed,12/07/2026,", "event_date"),
    ("s-1,000000001,mailed,,", "event_date"),
    ("s-1,000000001,delivered,2026-12-10,1 MAIN ST | SPRINGFIELD IL 62704", "new_address"),
    ("s-1,000000001,forwarded,2026-12-10,1 MAIN ST |  | SPRINGFIELD IL 62704", "new_address"),
    ("s-1,000000001,forwarded,2026-12-10,A | B | C | D | E | F", "new_address"),
])
def test_each_bad_tracking_value_is_set_aside_with_its_row_and_column(line: str, field: str) -> None:
    data = csv_bytes(TRACKING_HEADER, "s-0,000000009,mailed,2026-12-07,", "", line)
    tracking = parse_tracking(data, TRACKING)
    assert [row.statement_id for row in tracking.rows] == ["s-0"]
    assert tracking.problems == (tracking.problems[0],) and tracking.problems[0].field == field
    assert tracking.problems[0].row == 3, "a blank line is counted: row N is the line after the header + N"


def test_a_row_with_several_bad_values_names_each() -> None:
    ack = parse_ack(csv_bytes(ACK_HEADER, "s-1,x,lost,0,"), ACK)
    assert [p.field for p in ack.problems] == ["sequence", "status", "pages"] and ack.rows == ()


@pytest.mark.parametrize(("data", "words"), [
    (b"", ["empty", "header"]),
    (b"\r\n  \r\n", ["empty", "header"]),
    (csv_bytes("statement_id,sequence,status,pages"), ["header", "reason missing"]),
    (csv_bytes("statement_id,sequence,pages,status,reason"), ["header", "out of order"]),
    (csv_bytes(ACK_HEADER + ",extra"), ["header", "6 columns"]),
    (csv_bytes("s-1,1,accepted,2,"), ["header"]),
    (ACK_HEADER.encode() + b"\r\ns-1,1,rejected,2,d\xe9chir\xe9\r\n", ["not UTF-8", "line 2"]),
    (csv_bytes(ACK_HEADER, 's-1,1,accepted,2,"unclosed'), ["row 1", "not valid CSV"]),
])
def test_a_file_that_is_not_the_agreed_table_is_refused_whole(data: bytes, words: list[str]) -> None:
    with pytest.raises(VendorFileError) as caught:
        parse_ack(data, ACK)
    message = str(caught.value)
    assert message.startswith(ACK) and "ask the vendor" in message
    for word in words:
        assert word in message


def test_a_file_under_the_wrong_name_is_refused() -> None:
    with pytest.raises(VendorFileError, match="tracking-YYYYMMDD-NNN.csv"):
        parse_tracking(csv_bytes(TRACKING_HEADER), "tracking.csv")
    with pytest.raises(VendorFileError, match="<BATCH>.ack.csv"):
        parse_ack(csv_bytes(ACK_HEADER), "EOB-20261206-FIRST-001.csv")


def test_a_members_details_never_reach_a_message_a_log_or_a_repr(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    ack = parse_ack(csv_bytes(ACK_HEADER, f's-1,1,rejected,2,"{CANARY_REASON}"',
                              f's-2,x,rejected,2,"{CANARY_REASON}"', f'"{CANARY_REASON}",3,accepted,1,',
                              f"s-4,4,{CANARY_REASON},1,", f"s-5,5,rejected,1,{CANARY_REASON * 5}",
                              f"s-6,6,rejected,1,{CANARY_REASON},{CANARY_ADDRESS}"), ACK)
    assert ack.rows[0].reason == CANARY_REASON, "recorded as data"
    assert len(ack.problems) == 5
    tracking = parse_tracking(csv_bytes(
        TRACKING_HEADER, f"s-1,000000001,forwarded,2026-12-11,{CANARY_ADDRESS}",
        f"s-2,000000002,delivered,2026-12-11,{CANARY_ADDRESS}",
        f"s-3,000000003,forwarded,2026-12-11,{CANARY_ADDRESS} | A | B | C",
        f"s-4,000000004,{CANARY_ADDRESS},2026-12-11,", f"s-5,{CANARY_ADDRESS},mailed,2026-12-11,"), TRACKING)
    assert tracking.rows[0].new_address[0] == "ZEBEDEE CANARYPHI", "recorded as data"
    assert len(tracking.problems) == 4
    seen += [repr(ack), repr(tracking)] + [p.describe(ACK) for p in (*ack.problems, *tracking.problems)]
    for data, parse in [(csv_bytes(f"{CANARY_ADDRESS},x,y,z"), parse_tracking),
                        (csv_bytes(f"s-1,000000001,forwarded,2026-12-11,{CANARY_ADDRESS}"), parse_tracking),
                        (csv_bytes(TRACKING_HEADER, f's-1,000000001,forwarded,2026-12-11,"{CANARY_ADDRESS}'),
                         parse_tracking),
                        (csv_bytes(ACK_HEADER).replace(b"reason", CANARY_REASON.encode()), parse_ack),
                        (csv_bytes(ACK_HEADER, f"s-1,1,rejected,2,{CANARY_REASON}\xe9").replace(
                            b"\xc3\xa9", b"\xe9"), parse_ack)]:
        with pytest.raises(VendorFileError) as caught:
            parse(data, TRACKING if parse is parse_tracking else ACK)
        seen.append(str(caught.value))
    seen += [record.getMessage() for record in caplog.records]
    assert any("row 2 sequence" in message for message in seen), "the problems were logged, by row"
    for text in seen:
        for word in CANARY_WORDS:
            assert word not in text, text


def test_an_ack_row_rejected_for_a_bad_value_does_not_shadow_the_others() -> None:
    rows = [f"s-{n},{n},accepted,1," for n in range(1, 6)]
    rows[2] = "s-3,3,accepted,-1,"
    ack = parse_ack(csv_bytes(ACK_HEADER, *rows), ACK)
    assert [r.sequence for r in ack.rows] == [1, 2, 4, 5]
    assert ack.problems == (RowProblem(3, "pages", ack.problems[0].problem),)
