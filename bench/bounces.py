"""Benchmark the bounce parser + classifier on the shared corpus of real bounce messages.

Prints per-queue precision/recall, the confusion matrix (expected vs decided), every wrong
decision, the flufl.bounce set's misses, and one final key=value line:
  accuracy=… cv_accuracy=… unseen_accuracy=… flufl_accuracy=… bounceparser_accuracy=…
  cv_bounceparser_accuracy=… bounceparser_found=… postfix_accuracy=… per_s=… messages=…
  recipients=… recipient_caused_to_retry=… cv_recipient_caused_to_retry=…
  bounceparser_recipient_caused_to_retry=…

accuracy: queue decisions on the shared corpus with the whole rule table. A decision is right
when it equals `queue` or `queue_alt` of expected.tsv; a row whose recipient we did not find
counts as wrong. recipient_caused_to_retry counts rows where the address is bad (expected
verify, retry not acceptable) but we decided retry, plus any outcome we ourselves mark
recipient-caused yet route to retry: both would resend to a bad address.

flufl_accuracy: the real bounces shipped with flufl.bounce (tests/data/flufl_bounce/, labels
from that project's tests): right when every address it names is among our recipients and we
call it a delay exactly when it calls it temporary (and never ignore it).

bounceparser_accuracy: the real bounces shipped with the Perl Mail::DeliveryStatus::BounceParser
(tests/data/bounceparser/, queue labels ours, see its README): the queue (or `delay`) decided for
the first failed address; bounceparser_found: the share whose first failed address we found.

postfix_accuracy: the real DSNs Debian's Postfix wrote in the relay tests (tests/data/postfix_dsn/,
made by tests/reconcile/test_postfix_dsns.py): right when the named recipient lands in its queue.

cv_accuracy: k-fold cross-validation over the three sets (shared rows, flufl and BounceParser
messages). Every message falls in one of K folds by a hash of its name; each fold is measured
with the rules motivated only by messages of the other folds: a rule (or phrase) whose `seen_in`
lists only messages of this fold is withheld, one without `seen_in` (RFC codes, general reason
definitions) stays. unseen_accuracy is the same figure on the shared corpus's queue decisions
alone: the one to compare with a held-back set of real bounces, and cv_recipient_caused_to_retry
counts its bad addresses routed to retry. The parser is not withheld: its recipient finding was
written with all of these messages in view.

    .venv/bin/python bench/bounces.py [--corpus DIR] [--flufl DIR] [--bounceparser DIR] [--postfix DIR]
        [--repeat N] [--folds K]
    .venv/bin/python bench/bounces.py --needed-by   # which messages each rule phrase decides
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import sys
import time
import tomllib
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.outcomes.classify import (  # noqa: E402
    RULES_PATH,
    RuleTable,
    rule_table,
    rules_in_force,
    table_from,
)
from pipeline.reconcile.bounces import Bounce, UnparseableBounce, parse_bounce  # noqa: E402

QUEUES = ("verify", "retry", "paper", "ignore")
MISSING = "missing"
FLUFL_PREFIX = "flufl_bounce/"
"""How seen_in names a flufl.bounce message (shared corpus messages go by their file name)."""
BP_PREFIX = "bounceparser/"
"""How seen_in names a Mail::DeliveryStatus::BounceParser message."""
DELAY = "delay"


def queue_right(got: str, queue: str, alt: tuple[str, ...]) -> bool:
    return got == queue or got in alt


def bad_address_to_retry(got: str, queue: str, alt: tuple[str, ...], recipient_caused: bool) -> bool:
    """A resend to a bad address: expected verify (retry not acceptable), or ours recipient-caused."""
    expected_bad = queue == "verify" and "retry" not in alt
    return got == "retry" and (expected_bad or recipient_caused)


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
        return queue_right(self.got, self.row.queue, self.row.alt)

    @property
    def bad_address_to_retry(self) -> bool:
        return bad_address_to_retry(self.got, self.row.queue, self.row.alt, self.recipient_caused)


@dataclass(frozen=True, slots=True)
class FluflRow:
    file: str
    recipients: tuple[str, ...]
    temporary: bool

    @property
    def key(self) -> str:
        return FLUFL_PREFIX + self.file


@dataclass(frozen=True, slots=True)
class FluflDecision:
    row: FluflRow
    found: bool
    right: bool
    got: str


@dataclass(frozen=True, slots=True)
class LabelledRow:
    """A BounceParser message: the failed addresses and the queue (or `delay`) for the first."""

    file: str
    recipients: tuple[str, ...]
    queue: str
    alt: tuple[str, ...]

    @property
    def key(self) -> str:
        return BP_PREFIX + self.file


@dataclass(frozen=True, slots=True)
class LabelledDecision:
    row: LabelledRow
    got: str
    category: str
    recipient_caused: bool
    found: bool  # the first failed address is among the outcomes' recipients

    @property
    def right(self) -> bool:
        return queue_right(self.got, self.row.queue, self.row.alt)

    @property
    def bad_address_to_retry(self) -> bool:
        return bad_address_to_retry(self.got, self.row.queue, self.row.alt, self.recipient_caused)


def default_bounceparser() -> Path:
    return Path(__file__).resolve().parents[1] / "tests" / "data" / "bounceparser"


def load_labelled(folder: Path) -> list[LabelledRow]:
    with (folder / "expected.tsv").open(newline="", encoding="utf-8") as fh:
        return [
            LabelledRow(r["file"], tuple(a for a in r["recipients"].split(",") if a), r["queue"],
                        tuple(q for q in r["queue_alt"].split(",") if q))
            for r in csv.DictReader(fh, delimiter="\t")
        ]


def decide_labelled(rows: list[LabelledRow], parsed: dict[str, Bounce | None]) -> list[LabelledDecision]:
    """A delay report is `delay` whatever its category (reconcile only notes it); a message
    without failed recipients is right as `ignore` when nothing in it would move a statement."""
    out = []
    for row in rows:
        bounce = parsed.get(row.file)
        outcomes = list(bounce.recipients) if bounce is not None else []
        found = True
        if row.recipients:  # by address, else the first outcome (the VERP token names the statement)
            outcome = next((o for o in outcomes if o.recipient == row.recipients[0]), None)
            found = outcome is not None
            outcome = outcome or (outcomes[0] if outcomes else None)
        else:
            outcome = next((o for o in outcomes if str(o.classification.queue) != "ignore"), None)
        if outcome is None:
            out.append(LabelledDecision(row, "ignore" if not row.recipients else MISSING, "", False, found))
            continue
        c = outcome.classification
        got = DELAY if outcome.action == "delayed" else str(c.queue)
        out.append(LabelledDecision(row, got, str(c.category), c.recipient_caused, found))
    return out


def default_flufl() -> Path:
    return Path(__file__).resolve().parents[1] / "tests" / "data" / "flufl_bounce"


def load_flufl(folder: Path) -> list[FluflRow]:
    """The messages flufl.bounce's tests name recipients for (the others say nothing to score)."""
    with (folder / "expected.tsv").open(newline="", encoding="utf-8") as fh:
        rows = [
            FluflRow(r["file"], tuple(a for a in r["recipients"].split(",") if a), r["temporary"] == "1")
            for r in csv.DictReader(fh, delimiter="\t")
        ]
    return [r for r in rows if r.recipients]


def decide_flufl(rows: list[FluflRow], parsed: dict[str, Bounce | None]) -> list[FluflDecision]:
    out = []
    for row in rows:
        bounce = parsed.get(row.file)
        found = {o.recipient: o for o in bounce.recipients} if bounce is not None else {}
        ok = all(a in found for a in row.recipients)
        right = ok and all(
            (found[a].action == "delayed") == row.temporary and str(found[a].classification.queue) != "ignore"
            for a in row.recipients
        )
        got = ";".join(f"{o.recipient or '?'}:{o.action or '-'}:{o.classification.category}"
                       for o in found.values())
        out.append(FluflDecision(row, ok, right, got or MISSING))
    return out


def default_postfix() -> Path:
    return Path(__file__).resolve().parents[1] / "tests" / "data" / "postfix_dsn"


def postfix_decisions(folder: Path) -> list[tuple[str, str, str]]:
    """(file, expected queue, decided queue) for each real Postfix DSN of the relay tests."""
    if not (folder / "expected.tsv").is_file():
        return []
    out = []
    with (folder / "expected.tsv").open(newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh, delimiter="\t"):
            try:
                found = {o.recipient: o for o in parse_bounce((folder / r["file"]).read_bytes()).recipients}
            except UnparseableBounce:
                found = {}
            outcome = found.get(r["recipient"])
            out.append((r["file"], r["queue"], str(outcome.classification.queue) if outcome else MISSING))
    return out


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


@dataclass(frozen=True, slots=True)
class Sets:
    """Both message sets, read once: rows to score and the raw bytes to parse."""

    rows: list[Row]
    corpus: dict[str, bytes]
    flufl_rows: list[FluflRow]
    flufl: dict[str, bytes]
    bp_rows: list[LabelledRow]
    bp: dict[str, bytes]


def _parse(raw: dict[str, bytes]) -> dict[str, Bounce | None]:
    out: dict[str, Bounce | None] = {}
    for name, data in raw.items():
        try:
            out[name] = parse_bounce(data)
        except UnparseableBounce:
            out[name] = None
    return out


Scored = tuple[list[Decision], list[FluflDecision], list[LabelledDecision]]


def score(sets: Sets) -> Scored:
    """Decisions on the three sets with the rule table in force."""
    return (decide(sets.rows, _parse(sets.corpus)), decide_flufl(sets.flufl_rows, _parse(sets.flufl)),
            decide_labelled(sets.bp_rows, _parse(sets.bp)))


def fold_of(key: str, folds: int) -> int:
    return zlib.crc32(key.encode("utf-8")) % folds


def cross_validate(sets: Sets, folds: int, table: RuleTable | None = None) -> Scored:
    """Each fold measured with the rules motivated only by the other folds (see the docstring)."""
    table = table or rule_table()
    shared: list[Decision] = []
    flufl: list[FluflDecision] = []
    bp: list[LabelledDecision] = []
    for k in range(folds):
        held = {name for name in sets.corpus if fold_of(name, folds) == k}
        held_flufl = {name for name in sets.flufl if fold_of(FLUFL_PREFIX + name, folds) == k}
        held_bp = {name for name in sets.bp if fold_of(BP_PREFIX + name, folds) == k}
        fold = Sets(
            [r for r in sets.rows if r.file in held],
            {n: d for n, d in sets.corpus.items() if n in held},
            [r for r in sets.flufl_rows if r.file in held_flufl],
            {n: d for n, d in sets.flufl.items() if n in held_flufl},
            [r for r in sets.bp_rows if r.file in held_bp],
            {n: d for n, d in sets.bp.items() if n in held_bp},
        )
        withheld = held | {FLUFL_PREFIX + n for n in held_flufl} | {BP_PREFIX + n for n in held_bp}
        with rules_in_force(table.without(withheld)):
            got_shared, got_flufl, got_bp = score(fold)
        shared += got_shared
        flufl += got_flufl
        bp += got_bp
    return shared, flufl, bp


def _rights(sets: Sets) -> dict[str, bool]:
    shared, flufl, bp = score(sets)
    rights = {f"{d.row.file}#{d.row.index}": d.right for d in shared}
    rights.update({d.row.key: d.right for d in [*flufl, *bp]})
    return rights


def needed_by(sets: Sets, folds: int, path: Path = RULES_PATH) -> None:
    """For each rule phrase (or phrase-less rule): the messages decided wrongly without it.

    A phrase needed by a few messages only may have been written for them: if so, name them in
    its `seen_in` so cross-validation withholds it from their fold. The closing line is the
    strictest reading: cross-validation as if every such phrase had been written for exactly
    the messages that need it, everyday vocabulary included (a lower bound).
    """
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    strict = copy.deepcopy(data)
    base = _rights(sets)

    def without(i: int, phrase: str | None) -> RuleTable:
        variant = copy.deepcopy(data)
        spec = variant["rule"][i]
        if phrase is None or len(spec["text"]) == 1:
            del variant["rule"][i]
        else:
            spec["text"].remove(phrase)
            if isinstance(spec.get("seen_in"), dict):
                spec["seen_in"].pop(phrase, None)
        return table_from(variant)

    for i, spec in enumerate(data["rule"]):
        seen = spec.get("seen_in", [])
        for phrase in spec.get("text") or [None]:
            with rules_in_force(without(i, phrase)):
                now = _rights(sets)
            lost = sorted(k.split("#")[0] for k, ok in base.items() if ok and not now.get(k, False))
            if not lost:
                continue
            listed = seen.get(phrase, []) if isinstance(seen, dict) else seen
            mark = "named in seen_in" if set(lost) <= set(listed) else "not named"
            where = f"{phrase!r}" if phrase is not None else "(whole rule)"
            print(f"rule {i} {spec['category']} {where}: {mark}, needed by {', '.join(sorted(set(lost)))}")
            strict_spec = strict["rule"][i]
            if phrase is None:
                strict_spec["seen_in"] = sorted(set(lost) | set(listed))
            else:
                per_phrase = strict_spec.get("seen_in")
                if not isinstance(per_phrase, dict):  # a whole-rule list: the same for each phrase
                    whole = per_phrase or []
                    per_phrase = {t: list(whole) for t in strict_spec["text"] if whole}
                    strict_spec["seen_in"] = per_phrase
                per_phrase[phrase] = sorted(set(lost) | set(listed))
    cv_shared, cv_flufl, cv_bp = cross_validate(sets, folds, table_from(strict))
    print(f"strict: cv_accuracy={_accuracy([*cv_shared, *cv_flufl, *cv_bp]):.3f} "
          f"unseen_accuracy={_accuracy(cv_shared):.3f}")


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


def _accuracy(items: Sequence[Decision | FluflDecision | LabelledDecision]) -> float:
    return sum(d.right for d in items) / len(items) if items else 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=default_corpus())
    ap.add_argument("--flufl", type=Path, default=default_flufl())
    ap.add_argument("--postfix", type=Path, default=default_postfix())
    ap.add_argument("--bounceparser", type=Path, default=default_bounceparser())
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--needed-by", action="store_true", help="list the messages each rule phrase decides")
    args = ap.parse_args(argv)
    if not (args.corpus / "expected.tsv").is_file():
        print(f"corpus not found: {args.corpus}", file=sys.stderr)
        return 2
    rows = load_expected(args.corpus)
    files = sorted(p.name for p in args.corpus.glob("*.eml"))
    raw = {name: (args.corpus / name).read_bytes() for name in files}
    has_flufl = (args.flufl / "expected.tsv").is_file()
    flufl_rows = load_flufl(args.flufl) if has_flufl else []
    flufl_raw = {r.file: (args.flufl / r.file).read_bytes() for r in flufl_rows}
    has_bp = (args.bounceparser / "expected.tsv").is_file()
    bp_rows = load_labelled(args.bounceparser) if has_bp else []
    bp_raw = {r.file: (args.bounceparser / r.file).read_bytes() for r in bp_rows}
    sets = Sets(rows, raw, flufl_rows, flufl_raw, bp_rows, bp_raw)
    if args.needed_by:
        needed_by(sets, max(2, args.folds))
        return 0
    decisions, flufl_decisions, bp_decisions = score(sets)
    report(decisions)
    flufl_wrong = [d for d in flufl_decisions if not d.right]
    print(f"\nflufl.bounce set: {len(flufl_decisions)} messages, "
          f"recipients found in {sum(d.found for d in flufl_decisions)}, wrong ({len(flufl_wrong)})")
    for miss in flufl_wrong:
        print(f"  {miss.row.file} expected={','.join(miss.row.recipients)}"
              f" temporary={int(miss.row.temporary)} got={miss.got}")
    postfix = postfix_decisions(args.postfix)
    postfix_wrong = [p for p in postfix if p[1] != p[2]]
    print(f"\nPostfix DSNs of the relay tests: {len(postfix)} messages, wrong ({len(postfix_wrong)})")
    for file, expected, got in postfix_wrong:
        print(f"  {file} expected={expected} got={got}")
    bp_wrong = [d for d in bp_decisions if not d.right]
    print(f"\nBounceParser set: {len(bp_decisions)} messages, first failed address found in "
          f"{sum(d.found for d in bp_decisions)}, wrong ({len(bp_wrong)})")
    for d in bp_wrong:
        print(f"  {d.row.file} expected={d.row.queue} alt={','.join(d.row.alt) or '-'}"
              f" got={d.got} category={d.category or '-'}")
    cv_shared, cv_flufl, cv_bp = cross_validate(sets, max(2, args.folds))
    wrong_anyway = {(d.row.file, d.row.index) for d in decisions if not d.right}
    cv_wrong = [d for d in cv_shared if not d.right and (d.row.file, d.row.index) not in wrong_anyway]
    print(f"\ncross-validation ({max(2, args.folds)} folds): shared rows wrong only without the rules "
          f"written for them ({len(cv_wrong)})")
    for d in cv_wrong:
        print(f"  {d.row.file} #{d.row.index} expected={d.row.queue} got={d.got}"
              f" category={d.category or '-'}")
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
        f"accuracy={right / len(decisions):.3f} "
        f"cv_accuracy={_accuracy([*cv_shared, *cv_flufl, *cv_bp]):.3f} "
        f"unseen_accuracy={_accuracy(cv_shared):.3f} flufl_accuracy={_accuracy(flufl_decisions):.3f} "
        f"bounceparser_accuracy={_accuracy(bp_decisions):.3f} "
        f"cv_bounceparser_accuracy={_accuracy(cv_bp):.3f} "
        f"bounceparser_found={sum(d.found for d in bp_decisions) / max(1, len(bp_decisions)):.3f} "
        f"postfix_accuracy={(len(postfix) - len(postfix_wrong)) / max(1, len(postfix)):.3f} "
        f"per_s={len(files) * repeat / elapsed:.0f} messages={len(files)} recipients={len(decisions)} "
        f"recipient_caused_to_retry={sum(d.bad_address_to_retry for d in decisions)} "
        f"cv_recipient_caused_to_retry={sum(d.bad_address_to_retry for d in cv_shared)} "
        f"bounceparser_recipient_caused_to_retry={sum(d.bad_address_to_retry for d in bp_decisions)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
