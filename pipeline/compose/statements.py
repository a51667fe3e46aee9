"""Compose: a shard's accepted claim lines, one statement per member and period.

Two views of the same pure function of the canonical lines:

- `compose_shard` / `summarize_members`: vectorised per bucket (Arrow + numpy), one row per
  member with totals, accumulators, flags, channel and a content hash, from the line totals
  ingest keeps with each member in members.parquet (accumulators included: what the lines add
  to each is a line total too) and the claims system's accumulators joined by member id. This
  is what the compose stage writes to the ledger; it reads no claim line at all.
- `iter_composed`: full `Statement` objects, member by member, for render (the line objects
  are checked against those totals: the test suite proves both views agree).

The statement_id is derived from member, period and version with a keyed hash (see
`StatementIds`). The content hash lets a re-run
tell "nothing changed" (no new row) from "a corrected extract" (a new version that replaces the
previous one); the compose stage records the version it chose per member in
`statements/shard-NNN.parquet`, and `iter_composed` refuses lines that no longer match it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.column_kernels import domain_array
from pipeline.compose import accumulators as acc
from pipeline.compose.reasons import explain_reason, is_adverse, statement_codes
from pipeline.deadlines import NoticeRule
from pipeline.model import (
    ACCUMULATOR_KEYS,
    ClaimLine,
    Member,
    Plan,
    Statement,
    parse_adjustments,
    resolve_plan_type,
)
from pipeline.periods import parse_period, statement_date
from pipeline.reason_codes import reason_table
from pipeline.recipients import subscriber_id
from pipeline.storage import (
    ACCRUED_COLUMNS,
    LINE_TOTALS,
    MONEY_COLUMNS,
    as_array,
    as_uint64,
    bucket_count,
    hash_strings,
    iter_buckets,
    member_buckets,
    mix64,
    read_bucket_members,
)
from pipeline.templates import resolve_language

_LINE_FIELDS = [f for f in ClaimLine.__slots__]  # type: ignore[attr-defined]
_LINE_DEFAULTS: dict[str, Any] = {"denied": 0, "pending": 0, "adjustments": "", "no_surprises": False,
                                  "payee": "",
                                  "paid_date": None, "payment_ref": "", "original_claim_id": ""}
"""Line columns an extract from before they existed lacks, and what such a line means."""
CHUNK_STATEMENTS = 5_000
MANIFEST_SCHEMA = pa.schema([("member_id", pa.string()), ("statement_id", pa.string()),
                             ("version", pa.int32()), ("replaces", pa.string()),
                             ("content_hash", pa.string())])


class StaleComposition(RuntimeError):
    """The canonical lines changed after compose chose statement versions: re-run compose."""


@dataclass(frozen=True, slots=True)
class Composed:
    """One statement and how it travels. `recipient_id` is whom it is for (pipeline.recipients:
    the member id, or `<member_id>~<patient>` for a patient's own statement), the key of the
    ledger row and the statement id; `statement.member.member_id` is the card's id."""

    recipient_id: str
    statement: Statement
    channel: str  # "email" or "paper"
    paper_reason: str | None
    email: str | None
    email_domain: str | None
    prompt_notice: bool
    content_hash: str = ""
    prompt_notice_claims: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Version:
    """What compose decided for one member: the statement id, its version and what it replaces."""

    statement_id: str
    version: int
    replaces: str | None
    content_hash: str


KEYED_IDS = "hmac-sha256"
"""The statement id scheme of every run composed since statement ids are keyed."""
UNKEYED_IDS = "sha256"
"""The scheme of runs composed before: kept only so that their re-composes give the ids they have."""
ID_SCHEMES = (UNKEYED_IDS, KEYED_IDS)
"""Every scheme a run may record (`runs.statement_id_scheme`)."""


class UnknownIdScheme(ValueError):
    """A run records a statement id scheme this version does not know."""


def make_statement_id(member_id: str, period: str, version: int = 1, *, key: bytes) -> str:
    """Deterministic, and opaque without the key: the same member, period, version and key give
    the same id; `st-<period>-` + 16 hex digits of HMAC-SHA-256. The id travels in every email
    (Message-ID, X-EOB-Statement, the VERP return path), so it must not let anyone who tries all
    member IDs recover one: an unkeyed hash of a 9-digit member ID would."""
    if not key:
        raise ValueError("a statement id needs a non-empty key (EOB_STATEMENT_ID_KEY)")
    digest = hmac.new(key, f"{member_id}|{period}|{version}".encode(), hashlib.sha256).hexdigest()[:16]
    return f"st-{period}-{digest}"


def _unkeyed_statement_id(member_id: str, period: str, version: int = 1) -> str:
    """How ids were made before they were keyed (anyone can recompute them from a member ID):
    only for runs that already have such ids (`UNKEYED_IDS`)."""
    digest = hashlib.sha256(f"{member_id}|{period}|{version}".encode()).hexdigest()[:16]
    return f"st-{period}-{digest}"


@dataclass(frozen=True, slots=True)
class StatementIds:
    """A run's statement ids: its scheme (`runs.statement_id_scheme`) and the key."""

    scheme: str
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if self.scheme not in ID_SCHEMES:
            raise UnknownIdScheme(f"statement id scheme {self.scheme!r} is not one of {ID_SCHEMES}")
        if self.scheme == KEYED_IDS and not self.key:
            raise ValueError("keyed statement ids need a non-empty key (EOB_STATEMENT_ID_KEY)")

    def __call__(self, member_id: str, period: str, version: int = 1) -> str:
        if self.scheme == UNKEYED_IDS:
            return _unkeyed_statement_id(member_id, period, version)
        return make_statement_id(member_id, period, version, key=self.key)


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", np.uint8)


def _hex16(octets: np.ndarray) -> pa.Array:
    """Eight bytes per value (big-endian) as 16 lower-case hex digits: f"{x:016x}", vectorised."""
    octets = octets.reshape(-1, 8)
    n = len(octets)
    chars = np.empty((n, 16), np.uint8)
    chars[:, 0::2] = _HEX_DIGITS[octets >> 4]
    chars[:, 1::2] = _HEX_DIGITS[octets & 15]
    offsets = np.arange(0, 16 * n + 1, 16, dtype=np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(chars.tobytes())])


def paper_reason(email: str, email_valid: bool, consent: str, suppressed: bool) -> str | None:
    """Why a member gets paper instead of email, or None when email is allowed."""
    if consent != "Y":
        return "no_consent"
    if not email:
        return "no_email"
    if not email_valid:
        return "invalid_email"
    if suppressed:
        return "suppressed"
    return None


SUMMARY_COLUMNS = ["member_id", "plan_id", "email", "email_valid", "edelivery_consent", "recipient",
                   "ytd_deductible", "ytd_out_of_pocket", *LINE_TOTALS.names]
"""What compose reads of members.parquet: no names or addresses (and any other `ytd_` figure
the extract gives, see pipeline.compose.accumulators.year_to_date). The accumulators' line totals
(ACCRUED_COLUMNS) are read when members.parquet has them (see accumulators.period_accrued)."""


def _summary_columns(run_dir: Path) -> list[str]:
    names = pq.read_schema(run_dir / "members.parquet").names
    optional = set(ACCRUED_COLUMNS.values())
    return [*(name for name in SUMMARY_COLUMNS if name in names or name not in optional),
            *(name for name in names if name.startswith("ytd_") and name not in SUMMARY_COLUMNS)]


# -- plans ---------------------------------------------------------------------------------
def load_plans(run_dir: Path) -> dict[str, Plan]:
    """Plans with a known limit; an unknown limit (empty in the extract) is 0 and not shown.
    Columns an older extract lacks take their defaults: the other tiers' limits
    (`family_deductible_limit`, `oon_out_of_pocket_limit`, ..., see accumulators.extract_name),
    `plan_type`, `funding` and `plan_year_start`."""
    table = pq.read_table(run_dir / "plans.parquet")
    return {row["plan_id"]: _plan(row) for row in table.to_pylist()}


def _plan(row: dict[str, Any]) -> Plan:
    limits = tuple((".".join(key), int(row[f"{acc.extract_name(key)}_limit"])) for key in ACCUMULATOR_KEYS
                   if key[1:] != ("individual", "in") and row.get(f"{acc.extract_name(key)}_limit"))
    return Plan(row["plan_id"], row["plan_name"], row["brand"], row["deductible_limit"] or 0,
                row["out_of_pocket_limit"] or 0, plan_type=row.get("plan_type") or "",
                funding=row.get("funding") or "insured", plan_year_start=row.get("plan_year_start"),
                limits=limits)


# -- the vectorised view -------------------------------------------------------------------


def summarize_members(members: pa.Table, plans: dict[str, Plan], *, notices: NoticeRule,
                      is_suppressed: Callable[[str], bool] | None = None,
                      address_key: Callable[[str], str] | None = None,
                      extract: pa.Table | None = None) -> pa.Table:
    """One row per member with lines in the period: the statement without its line objects,
    from the line totals ingest keeps with each member (members.parquet). With `address_key`
    (a keyed hash), an `address_hash` column: the key of an email statement's address (None
    for paper), so the compose stage can tell a changed address without keeping one.

    The accumulators come from the line totals too (storage.ACCRUED_COLUMNS) and from `extract`,
    the claims system's figures of the members' bucket (accumulators.read_extract_table, by
    BucketFigures; None when the extract has none): `deductible_used` and `out_of_pocket_used`
    (individual, in network) as the statement shows them, and `accumulator_overrun`, any of a
    member's accumulators above its limit (see pipeline.compose.accumulators). Nothing is capped
    at a limit."""
    with_lines = pc.greater(members["line_count"], 0)
    member = members if pc.all(with_lines).as_py() else members.filter(with_lines)
    if not member.num_rows:
        return pa.table({})
    sums = {name: member[f"lines_{name}"].to_numpy() for name in MONEY_COLUMNS}
    plan_at = pc.index_in(member["plan_id"], pa.array(list(plans), pa.string())).to_numpy(
        zero_copy_only=False)
    figures = acc.figures(member, plans, plan_at, extract)
    deductible, out_of_pocket = ("deductible", "individual", "in"), ("out_of_pocket", "individual", "in")
    fingerprint = as_uint64(member["lines_hash"])  # a wrapping sum: a multiset hash of the lines
    fingerprint = mix64(fingerprint ^ hash_strings(member["plan_id"]))
    fingerprint = mix64(fingerprint ^ as_uint64(member["ytd_deductible"]))
    fingerprint = mix64(fingerprint ^ as_uint64(member["ytd_out_of_pocket"]))
    for name in sorted(n for n in member.column_names if n.startswith("ytd_")
                       and n not in ("ytd_deductible", "ytd_out_of_pocket")):
        fingerprint = mix64(fingerprint ^ as_uint64(pc.fill_null(member[name], 0)))
    if figures.extract_hash is not None:  # the claims system's figures are content too
        fingerprint = mix64(fingerprint ^ figures.extract_hash)

    reasons = _paper_reasons(member, is_suppressed)
    email = pc.fill_null(member["email"], "")
    domain = domain_array(as_array(email))
    emailed = pc.is_null(reasons)
    keys = {} if address_key is None else {"address_hash": pa.array(
        [address_key(address) if send else None
         for address, send in zip(email.to_pylist(), emailed.to_pylist(), strict=True)], pa.string())}
    return pa.table({
        "member_id": member["member_id"],
        "line_count": member["line_count"],
        **{f"total_{name}": pa.array(sums[name]) for name in MONEY_COLUMNS},
        "total_member_owes": pa.array(sums["deductible"] + sums["copay"] + sums["coinsurance"]
                                      + sums["not_covered"]),
        "adverse": member["lines_adverse"],
        "no_surprises": member["lines_no_surprises"],
        "prompt_notice": _misses_deadline(member["earliest_adverse_received"], emailed, notices),
        "deductible_used": pa.array(figures.used[deductible]),  # individual, in network: never capped
        "deductible_limit": pa.array(figures.limit[deductible]),
        "out_of_pocket_used": pa.array(figures.used[out_of_pocket]),
        "out_of_pocket_limit": pa.array(figures.limit[out_of_pocket]),
        "accumulator_overrun": pa.array(figures.overrun),
        "channel": pc.if_else(emailed, "email", "paper"),
        "paper_reason": reasons,
        "email_domain": pc.if_else(emailed, domain, pa.scalar(None, pa.string())),
        "content_hash": _hex16(fingerprint.astype(">u8").view(np.uint8)),
        **keys,
    })


def _misses_deadline(received: pa.ChunkedArray, emailed: pa.Array, notices: NoticeRule) -> pa.Array:
    """True where the member's earliest adverse claim is noticed too late by this run's statement,
    on the statement's own channel (paper leaves days after email)."""
    deadline = pc.if_else(emailed, pa.scalar(notices.deadline("email"), pa.date32()),
                          pa.scalar(notices.deadline("paper"), pa.date32()))
    return pc.fill_null(pc.less(received, deadline), False)


def _paper_reasons(member: pa.Table, is_suppressed: Callable[[str], bool] | None) -> pa.Array:
    """Vectorised paper_reason(); the suppression check runs only for would-be email rows."""
    email = pc.fill_null(member["email"], "")
    reasons = pc.if_else(pc.not_equal(member["edelivery_consent"], "Y"), "no_consent",
                         pc.if_else(pc.equal(email, ""), "no_email",
                                    pc.if_else(pc.invert(member["email_valid"]), "invalid_email",
                                               pa.scalar(None, pa.string()))))
    if is_suppressed is None:
        return reasons.combine_chunks() if isinstance(reasons, pa.ChunkedArray) else reasons
    values = reasons.to_pylist()
    for index, (address, reason) in enumerate(zip(email.to_pylist(), values, strict=True)):
        if reason is None and is_suppressed(address):
            values[index] = "suppressed"
    return pa.array(values, pa.string())


def compose_shard(run_dir: Path, shard: int, period: str, *, notices: NoticeRule,
                  is_suppressed: Callable[[str], bool] | None = None,
                  address_key: Callable[[str], str] | None = None) -> Iterator[pa.Table]:
    """Statement summaries of one shard, bucket by bucket: from members.parquet alone (ingest
    keeps each member's line totals there), one row group per bucket, two buckets at a time
    (Parquet decoding and Arrow compute release the GIL). `address_key`: see summarize_members."""
    plans = load_plans(run_dir)
    extract = acc.BucketFigures(acc.read_extract_table(run_dir), bucket_count(run_dir))
    columns = _summary_columns(run_dir)

    def summarize(bucket: int) -> pa.Table:
        members = read_bucket_members(run_dir, bucket, columns)
        return summarize_members(members, plans, notices=notices, is_suppressed=is_suppressed,
                                 address_key=address_key, extract=extract(bucket))

    buckets = member_buckets(run_dir, shard)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for start in range(0, len(buckets), 2):  # at most two buckets in memory
            for summary in pool.map(summarize, buckets[start:start + 2]):
                if summary.num_rows:
                    yield summary


def prompt_notice_columns(run_dir: Path) -> list[str]:
    """The line columns prompt_notice_claims reads: with ingest's `adverse` flag when the lines
    have it (a paid line with a reduction code is adverse, a pended one is not)."""
    first = next((run_dir / "lines").rglob("bucket-*.parquet"), None)
    adverse = first is not None and "adverse" in pq.read_schema(first).names
    return ["member_id", "claim_id", "status", "received_date", *(["adverse"] if adverse else [])]


def prompt_notice_claims(lines: pa.Table, notices: NoticeRule) -> pa.Table:
    """(member_id, claim_id, received_date) of denied or reduced claims that may need a prompt
    notice: received before the latest channel deadline (`NoticeRule.latest_deadline`); whether
    one is needed is decided with the statement's channel (`NoticeRule.deadline`)."""
    deadline = pa.scalar(notices.latest_deadline, pa.date32())
    adverse = (pc.fill_null(lines["adverse"], False) if "adverse" in lines.column_names  # ingest's rule
               else pc.not_equal(lines["status"], "paid"))  # lines ingested before it
    late = pc.and_(adverse, pc.less(lines["received_date"], deadline))
    flagged = lines.filter(late).select(["member_id", "claim_id", "received_date"])
    if not flagged.num_rows:
        return flagged
    return flagged.group_by(["member_id", "claim_id"]).aggregate([("received_date", "min")]).rename_columns(
        ["member_id", "claim_id", "received_date"])


# -- versions (what the compose stage chose) -----------------------------------------------
def manifest_path(run_dir: Path, shard: int) -> Path:
    return run_dir / "statements" / f"shard-{shard:03d}.parquet"


def write_versions(run_dir: Path, shard: int, versions: dict[str, Version]) -> None:
    path = manifest_path(run_dir, shard)
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(versions.items())
    table = pa.table({
        "member_id": [m for m, _ in ordered], "statement_id": [v.statement_id for _, v in ordered],
        "version": pa.array([v.version for _, v in ordered], pa.int32()),
        "replaces": pa.array([v.replaces for _, v in ordered], pa.string()),
        "content_hash": [v.content_hash for _, v in ordered]}, schema=MANIFEST_SCHEMA)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def read_versions(run_dir: Path, shard: int) -> dict[str, Version] | None:
    path = manifest_path(run_dir, shard)
    if not path.exists():
        return None
    return {row["member_id"]: Version(row["statement_id"], row["version"], row["replaces"],
                                      row["content_hash"])
            for row in pq.read_table(path, schema=MANIFEST_SCHEMA).to_pylist()}


# -- full statements, for render -----------------------------------------------------------
def iter_composed(
    run_dir: Path, shard: int, period: str, *, notices: NoticeRule, statement_ids: StatementIds,
    is_suppressed: Callable[[str], bool] | None = None, accumulator_overrun: str = "show",
) -> Iterator[Composed]:
    """Every statement of one shard, bucket by bucket, in member order within a bucket: the
    versions compose chose, or, for a shard compose has not written, version 1 of each member
    with its id made by `statement_ids` (the run's scheme). With `accumulator_overrun="hold"`
    (the setting), a statement whose accumulators overrun a limit is marked held."""
    if accumulator_overrun not in acc.OVERRUN_MODES:
        raise ValueError(f"accumulator_overrun must be one of {acc.OVERRUN_MODES}")
    plans = load_plans(run_dir)
    versions = read_versions(run_dir, shard)
    issued = statement_date(period)
    figures = acc.read_extract_table(run_dir)
    extract = acc.BucketFigures(figures, bucket_count(run_dir))
    context = _Context(period, issued, plan_year_of=_plan_years(plans, period),
                       extract=acc.extract_figures(figures), hold_overruns=accumulator_overrun == "hold")
    for bucket, lines in iter_buckets(run_dir, shard):
        members = read_bucket_members(run_dir, bucket)
        lines = lines.sort_by([(key, "ascending") for key in ("member_id", "claim_id", "line_no")])
        summary = summarize_members(members, plans, notices=notices, is_suppressed=is_suppressed,
                                    extract=extract(bucket))
        if not summary.num_rows:
            continue
        late_by_member: dict[str, list[tuple[str, date]]] = {}
        for row in prompt_notice_claims(lines, notices).to_pylist():
            late_by_member.setdefault(row["member_id"], []).append((row["claim_id"], row["received_date"]))
        by_id = {row["member_id"]: row for row in members.to_pylist()}
        summary = summary.sort_by("member_id")  # the lines' order: a member's lines are bounds[i]:bounds[i+1]
        bounds = [0, *np.cumsum(summary["line_count"].to_numpy()).tolist()]
        if bounds[-1] != lines.num_rows or not pc.take(lines["member_id"], pa.array(bounds[:-1])).equals(
                summary["member_id"]):
            raise StaleComposition(f"bucket {bucket}: the canonical lines do not match members.parquet; "
                                   "re-run ingest for the period")
        for first in range(0, summary.num_rows, CHUNK_STATEMENTS):  # Python objects a chunk at a time
            chunk = summary.slice(first, CHUNK_STATEMENTS).to_pylist()
            start, stop = bounds[first], bounds[first + len(chunk)]
            part = lines.slice(start, stop - start)
            columns = _line_columns(part)
            for index, row in enumerate(chunk, start=first):
                member_row = by_id[row["member_id"]]
                version = _version_for(versions, row, period, statement_ids)
                line_objects = [ClaimLine(**{name: columns[name][i - start] for name in _LINE_FIELDS})
                                for i in range(bounds[index], bounds[index + 1])]
                late = tuple(sorted(claim for claim, received in late_by_member.get(row["member_id"], [])
                                    if notices.misses(row["channel"], received)))
                yield _composed(row, member_row, plans[member_row["plan_id"]], line_objects, version,
                                context, late)


def _version_for(versions: dict[str, Version] | None, row: dict, period: str,  # type: ignore[type-arg]
                 statement_ids: StatementIds) -> Version:
    if versions is None:
        return Version(statement_ids(row["member_id"], period), 1, None, row["content_hash"])
    chosen = versions.get(row["member_id"])
    if chosen is None or chosen.content_hash != row["content_hash"]:
        known = chosen.statement_id if chosen else statement_ids(row["member_id"], period)
        raise StaleComposition(
            f"statement {known}: the canonical lines changed after compose chose "
            "statement versions; re-run compose for the period before rendering")
    return chosen


@dataclass(frozen=True, slots=True)
class _Context:
    """What every statement of one iter_composed call shares."""

    period: str
    issued: date
    plan_year_of: dict[str, tuple[date, date]]
    extract: acc.ExtractFigures
    hold_overruns: bool


def _plan_years(plans: dict[str, Plan], period: str) -> dict[str, tuple[date, date]]:
    first_day, _ = parse_period(period)
    return {plan_id: acc.plan_year(plan, first_day) for plan_id, plan in plans.items()}


def _line_columns(part: pa.Table) -> dict[str, list[Any]]:
    """The line fields of a slice of canonical lines; a column an older extract lacks takes the
    field's default, and `adjustments` (canonical text) becomes Adjustment records."""
    names = set(part.column_names)
    columns = {name: part[name].to_pylist() if name in names else [_LINE_DEFAULTS[name]] * part.num_rows
               for name in _LINE_FIELDS}
    for name, default in _LINE_DEFAULTS.items():
        if name in names and default is not None:
            columns[name] = [default if value is None else value for value in columns[name]]
    columns["adjustments"] = [parse_adjustments(text) if isinstance(text, str) else tuple(text or ())
                              for text in columns["adjustments"]]
    return columns


def _composed(row: dict, member_row: dict, plan: Plan, lines: list[ClaimLine], version: Version,  # type: ignore[type-arg]
              context: _Context, late_claims: tuple[str, ...]) -> Composed:
    member = _member(member_row)
    as_of = context.issued - timedelta(days=1)
    accumulators = [] if member_row.get("recipient") else acc.build_accumulators(
        plan, member_row, lines, as_of, context.plan_year_of[plan.plan_id],
        context.extract.get(row["member_id"]))
    statement = Statement(
        statement_id=version.statement_id, version=version.version, period=context.period,
        statement_date=context.issued, member=member, plan=plan, lines=lines,
        reasons=[explain_reason(code, member.language) for code in statement_codes(lines)],
        accumulators=accumulators,
        has_adverse_determination=bool(row["adverse"]) or any(is_adverse(line) for line in lines),
        has_no_surprises_protection=bool(row["no_surprises"]),
        plan_type=resolve_plan_type(plan.plan_type, member.line_of_business),
    )
    if context.hold_overruns and any(a.overrun for a in accumulators):
        statement.held = acc.HOLD_OVERRUN
    statement.replaces = version.replaces
    # the replaced version is of the same period (versions are per member and period), and a
    # period's statements are all dated statement_date(period): the corrected one's own date
    statement.replaces_date = context.issued if version.replaces else None
    statement.reason_table_version = reason_table().version
    statement.own_statement = member_row.get("recipient") or ""
    email = member.email or ""
    reason = row["paper_reason"]
    return Composed(recipient_id=row["member_id"], statement=statement, channel=row["channel"],
                    paper_reason=reason,
                    email=email or None, email_domain=row["email_domain"],
                    prompt_notice=bool(row["prompt_notice"]), content_hash=row["content_hash"],
                    prompt_notice_claims=late_claims)


def _member(row: dict) -> Member:  # type: ignore[type-arg]
    """The member as the statement addresses them; for a patient's own statement the member id
    is the card's (the subscriber's), which the password and the masked id are made from. Its
    language is resolved once here, the way the email and the notices resolve it."""

    return Member(
        member_id=subscriber_id(row["member_id"]), first_name=row["first_name"], last_name=row["last_name"],
        date_of_birth=row["date_of_birth"], address_line1=row["address_line1"],
        address_line2=row["address_line2"], city=row["city"], state=row["state"],
        postal_code=row["postal_code"], email=row["email"] or None,
        language=resolve_language(row["language"] or ""),  # "ES", "es-US", "zh-TW" included
        plan_id=row["plan_id"], group_number=row["group_number"],
        line_of_business=row["line_of_business"] or "commercial",
        edelivery_consent=row["edelivery_consent"] == "Y",
        large_print=bool(row.get("large_print")) or row.get("alternate_format") == "large_print",
    )
