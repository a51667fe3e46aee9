"""Print batches as the vendor receives them: presort order, limits, manifest, control totals,
and a re-run of the same day that makes the same files."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pikepdf

from pipeline.paper.batches import MANIFEST_COLUMNS, BatchLimits, Piece, write_batches
from pipeline.render import render_statement
from tests.support.factories import make_member, make_statement

DAY = "2026-12-06"


def pieces_and_files(count: int) -> tuple[list[Piece], dict[str, bytes]]:
    pieces, files = [], {}
    for n in range(count):
        statement = make_statement(n_lines=2 + n % 5, member=make_member(member_id=f"M{n:09d}"))
        sid = statement.statement_id
        files[sid] = render_statement(statement, variant="print").pdf
        zip5 = f"{60000 + (n * 7919) % 900:05d}"
        pieces.append(Piece(sid, "first" if n % 4 else "standard",
                            (f"MEMBER {n}", f"{n} MAIN ST APT {n}", f"SPRINGFIELD IL {zip5}"),
                            zip5, carrier_route=f"C{n % 3:03d}"))
    return pieces, files


def run(pieces: list[Piece], files: dict[str, bytes], folder: Path, **limits: object):
    return write_batches(pieces, lambda p: files[p.statement_id], folder, day=DAY,
                         limits=BatchLimits(**limits),  # type: ignore[arg-type]
                         serial=lambda batch, seq: f"{batch:03d}{seq:06d}")


def manifest_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_batches_per_mail_class_in_presort_order_within_the_piece_limit(tmp_path: Path) -> None:
    pieces, files = pieces_and_files(23)
    result = run(pieces, files, tmp_path, max_pieces=7)
    names = [b.name for b in result.batches]
    assert names == ["EOB-20261206-FIRST-001", "EOB-20261206-FIRST-002", "EOB-20261206-FIRST-003",
                     "EOB-20261206-STANDARD-004"]
    assert [b.pieces for b in result.batches] == [7, 7, 3, 6]
    batched = [sid for b in result.batches for sid in b.statement_ids]
    assert sorted(batched) == sorted(p.statement_id for p in pieces), "every piece exactly once"
    for batch in result.batches:
        rows = manifest_rows(batch.manifest)
        assert tuple(rows[0]) == MANIFEST_COLUMNS
        keys = [(r["zip5"], r["carrier_route"]) for r in rows]
        assert keys == sorted(keys), "presort: ZIP, then carrier route"
        assert [int(r["sequence"]) for r in rows] == list(range(1, len(rows) + 1))
        with pikepdf.open(batch.pdf) as pdf:
            assert len(pdf.pages) == sum(int(r["pages"]) for r in rows) == batch.pages
        assert batch.sheets == sum(-(-int(r["pages"]) // 2) for r in rows), "duplex sheets"


def test_control_totals_hold_the_hash_of_every_file_and_match_the_manifest(tmp_path: Path) -> None:
    pieces, files = pieces_and_files(9)
    [first, standard] = run(pieces, files, tmp_path).batches
    control = json.loads(first.control.read_text())
    assert control["pieces"] == len(manifest_rows(first.manifest)) == first.pieces
    assert control["sheets"] == first.sheets and control["pages"] == first.pages
    assert [f["name"] for f in control["files"]] == [first.pdf.name, first.manifest.name]
    for entry in control["files"]:
        data = (tmp_path / entry["name"]).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)


def test_the_same_day_run_again_makes_identical_files(tmp_path: Path) -> None:
    pieces, files = pieces_and_files(10)
    first = run(pieces, files, tmp_path / "a")
    again = run(list(reversed(pieces)), files, tmp_path / "b")
    for one, two in zip(first.batches, again.batches, strict=True):
        for a, b in zip([*one.files, one.control], [*two.files, two.control], strict=True):
            assert a.name == b.name and a.read_bytes() == b.read_bytes()


def test_a_byte_limit_cuts_batches_and_an_unreadable_piece_is_set_aside(tmp_path: Path) -> None:
    pieces, files = pieces_and_files(8)
    files[pieces[3].statement_id] = b"%PDF-1.4 damaged"
    del files[pieces[5].statement_id]
    largest = max(len(d) for d in files.values())
    result = run(pieces, files, tmp_path, max_bytes=largest * 2)
    assert all(b.pieces <= 2 for b in result.batches)
    assert {s.statement_id for s in result.set_aside} == {pieces[3].statement_id, pieces[5].statement_id}
    assert all(s.reason for s in result.set_aside)
    assert sum(b.pieces for b in result.batches) == 6


def test_without_a_stamp_no_page_gets_an_overlay(tmp_path: Path) -> None:
    pieces, files = pieces_and_files(3)
    for batch in run(pieces, files, tmp_path).batches:
        with pikepdf.open(batch.pdf) as pdf:
            assert all(isinstance(page.obj.Contents, pikepdf.Stream) for page in pdf.pages)
