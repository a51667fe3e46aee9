"""Benchmark: print batches for 100,000 queued paper statements.

What is timed: reading each pre-rendered print variant from disk, presorting, stamping each
piece's address block (an endorsement line, the Intelligent Mail barcode with the piece's serial,
the address lines: pipeline.paper.window_block) into its recipient window, merging the pieces
into one print-ready PDF per batch (pipeline.paper.merge), the manifest and the control totals
with the SHA-256 of every file (pipeline.paper.batches). Figures from before the stamp
existed did not include stamping (nor reportlab's barcode module in the peak RSS). Not timed:
rendering the print variants, which happens first, in worker processes, as the render stage
does; every piece is a different statement (no two pieces share their pages' content, so
nothing is flattered by sharing).

Memory: each batching run is its own process, so its peak RSS is the batching's alone; it is
measured at two batch sizes to show that memory does not grow with the batch.

    .venv/bin/python bench/paper.py [--pieces 100000] [--batch 5000]

Last line: pieces_per_s=… rss_mib=… rss_mib_batch_1000=… rss_mib_batch_20000=… pieces=… batches=…
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

UNIQUE_BLOCK = 250  # statements rendered per worker task


def _render_block(args: tuple[int, int, str]) -> list[tuple[str, str]]:
    from bench.render import statements
    from pipeline.render import render_statement

    start, count, folder = args
    out = []
    for statement in statements(count, offset=start):
        path = Path(folder) / f"{statement.statement_id}.pdf"
        path.write_bytes(render_statement(statement, variant="print").pdf)
        out.append((statement.statement_id, statement.member.postal_code[:5]))
    return out


def render_all(pieces: int, folder: Path) -> list[tuple[str, str]]:
    tasks = [(start, min(UNIQUE_BLOCK, pieces - start), str(folder))
             for start in range(0, pieces, UNIQUE_BLOCK)]
    with multiprocessing.get_context("spawn").Pool() as pool:
        done: list[tuple[str, str]] = []
        for block in pool.imap(_render_block, tasks):
            done += block
            print(f"\rrendering print variants: {len(done):,}/{pieces:,}", end="", file=sys.stderr)
    print(file=sys.stderr)
    return done


def batch_phase(index: Path, source: Path, out: Path, max_pieces: int) -> dict[str, float]:
    from pipeline.paper.addresses import MailingAddress
    from pipeline.paper.batches import BatchLimits, Piece, write_batches
    from pipeline.paper.imb import ImbFields
    from pipeline.paper.window_block import address_block

    rows = json.loads(index.read_text())
    pieces = [Piece(sid, "first", (f"MEMBER {n}", f"{n} MAIN ST", f"CITY ST {zip5}"), zip5)
              for n, (sid, zip5) in enumerate(rows)]

    def stamp(piece: Piece, serial: str) -> bytes:
        address = MailingAddress(piece.address_lines, "CITY", "ST", piece.zip5, piece.zip4)
        fields = ImbFields("00", "270", "123456", serial, piece.zip5 + piece.zip4)
        return address_block(address, fields, endorsement="ADDRESS SERVICE REQUESTED")

    start = time.perf_counter()
    result = write_batches(pieces, lambda p: (source / f"{p.statement_id}.pdf").read_bytes(), out,
                           day="2026-12-06", limits=BatchLimits(max_pieces=max_pieces),
                           serial=lambda b, s: f"{b:03d}{s:06d}", stamp=stamp)
    elapsed = time.perf_counter() - start
    batched = sum(b.pieces for b in result.batches)
    return {"pieces": batched, "seconds": elapsed, "batches": len(result.batches),
            "set_aside": len(result.set_aside), "sheets": sum(b.sheets for b in result.batches),
            "bytes": sum(b.pdf.stat().st_size for b in result.batches),
            "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(index: Path, source: Path, max_pieces: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="eob-paper-out-") as out:
        done = subprocess.run([sys.executable, __file__, "--child", str(index), str(source), out,
                               str(max_pieces)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pieces", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=5_000, help="pieces per batch for the timed run")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        index, source, out, max_pieces = args.child
        print(json.dumps(batch_phase(Path(index), Path(source), Path(out), int(max_pieces))))
        return 0
    with tempfile.TemporaryDirectory(prefix="eob-paper-bench-") as tmp:
        source = Path(tmp) / "print"
        source.mkdir()
        rows = render_all(args.pieces, source)
        index = Path(tmp) / "index.json"
        index.write_text(json.dumps(rows))
        main_run = run_child(index, source, args.batch)
        print(f"batched {main_run['pieces']:,.0f} pieces in {main_run['batches']:.0f} batches "
              f"({main_run['sheets']:,.0f} sheets, {main_run['bytes'] / 2**20:,.0f} MiB of PDF) "
              f"in {main_run['seconds']:.1f} s; peak RSS {main_run['rss_mib']:.0f} MiB")
        sizes = {}
        for size in (1_000, 20_000):
            sizes[size] = run_child(index, source, size)["rss_mib"]
            print(f"batch size {size:,}: peak RSS {sizes[size]:.0f} MiB")
    print(f"pieces_per_s={main_run['pieces'] / main_run['seconds']:.0f} rss_mib={main_run['rss_mib']:.0f} "
          f"rss_mib_batch_1000={sizes[1_000]:.0f} rss_mib_batch_20000={sizes[20_000]:.0f} "
          f"pieces={main_run['pieces']:.0f} batches={main_run['batches']:.0f} "
          f"set_aside={main_run['set_aside']:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
