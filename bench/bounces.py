"""Benchmark the bounce parser + classifier on the shared corpus of real bounce messages.

Prints per-queue precision/recall, the confusion matrix (expected vs decided), every wrong
decision, and one final key=value line:
  accuracy=… per_s=… messages=… recipients=… recipient_caused_to_retry=…

A decision is right when it equals `queue` or `queue_alt` of expected.tsv. A row whose
recipient we did not find counts as wrong. recipient_caused_to_retry counts rows where the
address is bad (expected verify, retry not acceptable) but we decided retry, plus any outcome
we ourselves mark recipient-caused yet route to retry: both would resend to a bad address.

    .venv/bin/python bench/bounces.py [--corpus DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.reconcile.bounces import Bounce, UnparseableBounce, parse_bounce  # noqa: E402

QUEUES = ("verify", "retry", "paper", "ignore")
MISSING = "missing"


@dataclass(frozen=True, slots=True)
class Row:
    file: str
    index: int
    queue: str
    alt: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Decision:
    row: Row
    got: str
    category: str
    recipient_caused: bool

    @property
    def right(self) -> bool:
        return self.got == self.row.queue or self.got in self.row.alt

    @property
    def bad_address_to_retry(self) -> bool:
        expected_bad = self.row.queue == "verify" and "retry" not in self.row.alt
        return self.got == "retry" and (expected_bad or self.recipient_caused)


def default_corpus() -> Path:
    shared = os.environ.get("EOB_SHARED_DATA")
    base = Path(shared) if shared else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    return base / "bounces"


def load_expected(corpus: Path) -> list[Row]:
    with (corpus / "expected.tsv").open(newline="", encoding="utf-8") as fh:
        return [
            Row(
                r["file"],
                int(r["recipient_index"]),
                r["queue"],
                tuple(q for q in r["queue_alt"].split(",") if q),
            )
            for r in csv.DictReader(fh, delimiter="\t")
        ]


def parse_all(corpus: Path, files: list[str]) -> dict[str, Bounce | None]:
    results: dict[str, Bounce | None] = {}
    for name in files:
        try:
            results[name] = parse_bounce((corpus / name).read_bytes())
        except UnparseableBounce:
            results[name] = None
    return results


def decide(rows: list[Row], parsed: dict[str, Bounce | None]) -> list[Decision]:
    out = []
    for row in rows:
        bounce = parsed.get(row.file)
        if bounce is None or len(bounce.recipients) < row.index:
            out.append(Decision(row, MISSING, "", False))
            continue
        c = bounce.recipients[row.index - 1].classification
        out.append(Decision(row, str(c.queue), str(c.category), c.recipient_caused))
    return out


def report(decisions: list[Decision]) -> None:
    print("per-queue precision / recall (a decision matching queue_alt counts as right)")
    for q in QUEUES:
        decided = [d for d in decisions if d.got == q]
        expected = [d for d in decisions if d.row.queue == q]
        prec = sum(d.right for d in decided) / len(decided) if decided else 0.0
        rec = sum(d.right for d in expected) / len(expected) if expected else 0.0
        print(
            f"  {q:<7} precision={prec:.3f} ({len(decided)} decided)"
            f"  recall={rec:.3f} ({len(expected)} expected)"
        )
    cols = (*QUEUES, MISSING)
    matrix = Counter((d.row.queue, d.got) for d in decisions)
    print("\nconfusion matrix (rows = expected queue, columns = decided)")
    print("  " + "expected".ljust(9) + "".join(c.rjust(9) for c in cols))
    for q in QUEUES:
        print("  " + q.ljust(9) + "".join(str(matrix[(q, c)]).rjust(9) for c in cols))
    wrong = [d for d in decisions if not d.right]
    print(f"\nwrong decisions ({len(wrong)})")
    for d in wrong:
        alt = ",".join(d.row.alt) or "-"
        print(
            f"  {d.row.file} #{d.row.index} expected={d.row.queue} alt={alt}"
            f" got={d.got} category={d.category or '-'}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=default_corpus())
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    if not (args.corpus / "expected.tsv").is_file():
        print(f"corpus not found: {args.corpus}", file=sys.stderr)
        return 2
    rows = load_expected(args.corpus)
    files = sorted(p.name for p in args.corpus.glob("*.eml"))
    raw = {name: (args.corpus / name).read_bytes() for name in files}
    parsed = parse_all(args.corpus, files)
    decisions = decide(rows, parsed)
    report(decisions)
    repeat = max(1, args.repeat)
    start = time.perf_counter()
    for _ in range(repeat):
        for data in raw.values():
            try:
                for r in parse_bounce(data).recipients:
                    _ = r.classification.queue
            except UnparseableBounce:
                pass
    elapsed = time.perf_counter() - start
    right = sum(d.right for d in decisions)
    print(
        f"accuracy={right / len(decisions):.3f} per_s={len(files) * repeat / elapsed:.0f} "
        f"messages={len(files)} recipients={len(decisions)} "
        f"recipient_caused_to_retry={sum(d.bad_address_to_retry for d in decisions)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
