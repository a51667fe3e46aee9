"""The support desk's audit trail: every sign-in, search, look at a statement, export and action
is an entry of the ledger's hash-chained audit log (pipeline/ledger/audit.py) saying who, when,
from where, what, which statement and why; and the access review a compliance officer reads.

HIPAA's audit controls (164.312(b)) ask for reads to be logged as well as changes, and for the
logs to be reviewed: `access_review` answers who looked at how many members, who looked at
unusually many in a day, and which looks happened outside a member contact (a search the agent
opened for a caller). It holds users, counts, statement ids and masked member ids: nothing a
reviewer needs a member's data for.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from pipeline.clock import iso
from pipeline.desk.reasons import checked_reason
from pipeline.ledger import Ledger
from pipeline.ledger.audit import ChainProblem, ChainReport, ProblemKind, verify_chain
from pipeline.recipients import mask_member_id, subscriber_id
from pipeline.settings import Settings

__all__ = [
    "AccessReview", "AuditEntry", "ChainProblem", "ChainReport", "DeskAction", "ProblemKind",
    "UncontactedLook", "UnusualVolume", "UserAccess", "access_review", "entries", "record",
    "render_access_review_html", "verify", "within_contact", "write_access_review",
]


class DeskAction(StrEnum):
    """What a desk entry records: the closed set `record` accepts."""

    SIGN_IN = "sign_in"
    SIGN_IN_FAILED = "sign_in_failed"
    SIGN_OUT = "sign_out"
    SEARCH = "search"
    VIEW_STATEMENT = "view_statement"
    LOOKUP = "lookup"  # `eob lookup`: a look at a statement from the command line
    EXPORT = "export"
    VIEW_AUDIT = "view_audit"
    USER_ADMIN = "user_admin"
    CONTACT_OPENED = "contact_opened"
    ADDRESS_CHANGE_REQUESTED = "address_change_requested"
    ADDRESS_CHANGE_APPROVED = "address_change_approved"
    ADDRESS_CHANGE_REJECTED = "address_change_rejected"
    MOVED_TO_PAPER = "moved_to_paper"
    SUPPRESSION_LIFTED = "suppression_lifted"
    RESEND_CANCELLED = "resend_cancelled"


LOOKS = frozenset({DeskAction.VIEW_STATEMENT, DeskAction.LOOKUP})
"""Entries that showed someone a statement (its member's data)."""
CHANGES = frozenset({
    DeskAction.ADDRESS_CHANGE_REQUESTED, DeskAction.ADDRESS_CHANGE_APPROVED,
    DeskAction.ADDRESS_CHANGE_REJECTED, DeskAction.MOVED_TO_PAPER, DeskAction.SUPPRESSION_LIFTED,
    DeskAction.RESEND_CANCELLED,
})
"""Entries of actions taken on a statement."""

_ACTIONS = frozenset(action.value for action in DeskAction)
_PHI_KEYS = frozenset({"address", "birth_date", "dob", "email", "name", "password", "term"})
"""Detail keys that would hold a member's data or a secret: refused outright (callers pass keyed
hashes and masked values, under other names)."""
_FAR_FUTURE = "9999-12-31"


class AuditRefused(ValueError):
    """An audit entry the desk must not write (an unknown action, a detail key that would hold
    personal data, no actor): a programming error, never a user's."""


def record(ledger: Ledger, *, actor: str, action: str, source: str | None,
           statement_id: str | None = None, reason: str | None = None,
           detail: Mapping[str, Any] | None = None) -> str:
    """Append one desk entry: who (`actor`), when (the ledger's clock), from where (`source`: the
    client address, or the host a command ran on), what (`action`), which statement and why
    (`reason`, what the user typed: `reasons.checked_reason` refuses one that holds the member's
    details, `ReasonRefused`, before anything is written). Returns the entry's hash. `detail`
    must hold no PHI: search terms as keyed hashes, ids masked."""
    if not actor or not actor.strip():
        raise AuditRefused("an audit entry needs the actor who did it")
    if action not in _ACTIONS:
        raise AuditRefused(f"{action!r} is not a desk audit action (pipeline.desk.audit.DeskAction)")
    refused = sorted(_PHI_KEYS & set(detail or {}))
    if refused:
        raise AuditRefused(f"audit detail keys {refused} would hold personal data or a secret")
    why = checked_reason(reason) if reason is not None and reason.strip() else None
    return ledger.audit(actor.strip(), str(action), statement_id, detail, source=source or None,
                        reason=why)


def verify(ledger: Ledger, *, expect_head: str | None = None) -> ChainReport:
    """The whole chain checked in order: the first modified, deleted, reordered or inserted entry,
    or None; and the head. Keep the head outside the database: with `expect_head` a later verify
    finds a cut-off end or a log rewritten with its hashes recomputed."""
    return verify_chain(ledger.engine, expect_head=expect_head)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    at: str
    actor: str
    action: str
    statement_id: str | None
    source: str | None
    reason: str | None
    detail: Mapping[str, Any]
    hash: str


def entries(ledger: Ledger, *, since: datetime | None = None, actor: str | None = None,
            statement_id: str | None = None, limit: int = 200) -> list[AuditEntry]:
    """The newest entries first, optionally from `since`, of one actor, or about one statement."""
    rows = ledger.fetch("audit_entries", since=iso(since) if since else None, actor=actor,
                        statement_id=statement_id, limit=max(1, min(limit, 10_000)))
    return [AuditEntry(int(row["seq"]), row["at"], row["actor"], row["action"], row["statement_id"],
                       row["source"], row["reason"], json.loads(row["detail"] or "{}"), row["hash"])
            for row in rows]


def within_contact(windows: Iterable[tuple[str, str]], at: str) -> bool:
    """THE rule of member contacts: a look at `at` is covered when one of the agent's contacts
    with the member was open then, from its opening (included) to its expiry (excluded). Times
    are the ledger's ISO UTC texts. `contacts.has_open_contact` and the access review use it."""
    return any(opened <= at < expires for opened, expires in windows)


# -- the access review ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class UserAccess:
    """One user's period: searches, statements shown (`views`, `statements` distinct), members
    those belonged to, actions taken, sign-ins, and looks outside a member contact."""

    user: str
    searches: int
    views: int
    statements: int
    members: int
    actions: int
    sign_ins: int
    failed_sign_ins: int
    busiest_day_members: int
    uncontacted: int


@dataclass(frozen=True, slots=True)
class UnusualVolume:
    user: str
    day: date
    members: int


@dataclass(frozen=True, slots=True)
class UncontactedLook:
    """A look at a statement when its user had no member contact open for its member."""

    seq: int
    at: str
    user: str
    action: str
    statement_id: str
    member_masked: str
    source: str | None


@dataclass(frozen=True, slots=True)
class AccessReview:
    since: date
    until: date | None
    generated_at: str
    unusual_threshold: int
    entries: int
    users: tuple[UserAccess, ...]
    unusual: tuple[UnusualVolume, ...]
    uncontacted: tuple[UncontactedLook, ...]
    chain: ChainReport


def _start_of(day: date) -> str:
    return iso(datetime.combine(day, time(0), UTC))


def access_review(ledger: Ledger, settings: Settings, since: date,
                  until: date | None = None) -> AccessReview:
    """Who looked at how many members between `since` and `until` (both whole days, UTC; no
    `until`: up to now), who looked at more than `audit_unusual_members_per_day` members in a
    day, and every look at a member outside an open contact of that user. The chain is verified
    first: a review over a broken log says so."""
    start = _start_of(since)
    end = _start_of(until + timedelta(days=1)) if until else _FAR_FUTURE
    rows = [row for row in ledger.fetch("audit_between", since=start, until=end)
            if row["action"] in _ACTIONS]
    looked = sorted({row["statement_id"] for row in rows
                     if row["action"] in LOOKS and row["statement_id"]})
    members = {row["statement_id"]: row["member_id"]
               for row in ledger.fetch_for_ids("audit_statement_members", looked)}
    contacts: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for row in ledger.fetch("audit_contacts_between", since=start, until=end):
        contacts[(row["actor"], row["member_id"])].append((row["opened_at"], row["expires_at"]))

    counts: dict[str, Counter[str]] = defaultdict(Counter)
    seen_statements: dict[str, set[str]] = defaultdict(set)
    seen_members: dict[str, set[str]] = defaultdict(set)
    per_day: dict[tuple[str, str], set[str]] = defaultdict(set)
    uncontacted: list[UncontactedLook] = []
    for row in rows:
        user, action = row["actor"], row["action"]
        tally = counts[user]
        tally["entries"] += 1
        if action == DeskAction.SEARCH:
            tally["searches"] += 1
        elif action in CHANGES:
            tally["actions"] += 1
        elif action == DeskAction.SIGN_IN:
            tally["sign_ins"] += 1
        elif action == DeskAction.SIGN_IN_FAILED:
            tally["failed_sign_ins"] += 1
        if action not in LOOKS or not row["statement_id"]:
            continue
        sid = row["statement_id"]
        member = members.get(sid)
        subscriber = subscriber_id(member) if member else f"unknown statement {sid}"
        tally["views"] += 1
        seen_statements[user].add(sid)
        seen_members[user].add(subscriber)
        per_day[(user, row["at"][:10])].add(subscriber)
        if not within_contact(contacts.get((user, subscriber), ()), row["at"]):
            tally["uncontacted"] += 1
            uncontacted.append(UncontactedLook(int(row["seq"]), row["at"], user, action, sid,
                                               mask_member_id(subscriber) if member else "unknown",
                                               row["source"]))
    busiest: Counter[str] = Counter()
    unusual: list[UnusualVolume] = []
    for (user, day), day_members in sorted(per_day.items()):
        busiest[user] = max(busiest[user], len(day_members))
        if len(day_members) > settings.audit_unusual_members_per_day:
            unusual.append(UnusualVolume(user, date.fromisoformat(day), len(day_members)))
    users = tuple(
        UserAccess(user, t["searches"], t["views"], len(seen_statements[user]),
                   len(seen_members[user]), t["actions"], t["sign_ins"], t["failed_sign_ins"],
                   busiest[user], t["uncontacted"])
        for user, t in sorted(counts.items(), key=lambda item: (-len(seen_members[item[0]]), item[0])))
    return AccessReview(since, until, ledger.now(), settings.audit_unusual_members_per_day,
                        len(rows), users, tuple(unusual), tuple(uncontacted), verify(ledger))


CSV_COLUMNS = ["section", "user", "day", "at", "seq", "action", "statement_id", "member", "source",
               "searches", "views", "statements", "members", "actions", "sign_ins",
               "failed_sign_ins", "busiest_day_members", "looks_without_contact", "entries",
               "head", "head_at", "checked_at", "intact"]
"""One CSV for spreadsheets: a `chain_head` row first (the audit log's head when the review was
made: how many entries, the hash of the last, when it was written and when the chain was
checked), then a `user` row per user, an `unusual_volume` row per user and day over the
threshold, a `no_open_contact` row per look outside a contact."""


def render_access_review_html(review: AccessReview) -> str:
    """The review as one HTML page with no script (templates/reports/access_review.html.j2):
    what `eob audit report` writes and the auditor's page serves."""
    import jinja2  # only here: a look at a statement, audited, does not load Jinja2

    from pipeline.templates import TEMPLATES_DIR

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR / "reports"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    return env.get_template("access_review.html.j2").render(r=review)


def write_access_review(review: AccessReview, folder: Path) -> dict[str, Path]:
    """The review as HTML (for people; no script) and CSV (for spreadsheets), from the same
    figures; named by the period so reviews of other periods sit beside it. Both carry the audit
    log's head: a compliance officer who files them keeps the head outside the database."""
    folder.mkdir(parents=True, exist_ok=True)
    name = f"access-review-{review.since.isoformat()}-" \
           f"{review.until.isoformat() if review.until else 'now'}"
    html_path, csv_path = folder / f"{name}.html", folder / f"{name}.csv"
    html_path.write_text(render_access_review_html(review), encoding="utf-8")
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, restval="")
        writer.writeheader()
        writer.writerow({"section": "chain_head", "entries": review.chain.entries,
                         "head": review.chain.head, "head_at": review.chain.head_at or "",
                         "checked_at": review.generated_at,
                         "intact": str(review.chain.intact).lower()})
        for u in review.users:
            writer.writerow({"section": "user", "user": u.user, "searches": u.searches,
                             "views": u.views, "statements": u.statements, "members": u.members,
                             "actions": u.actions, "sign_ins": u.sign_ins,
                             "failed_sign_ins": u.failed_sign_ins,
                             "busiest_day_members": u.busiest_day_members,
                             "looks_without_contact": u.uncontacted})
        for v in review.unusual:
            writer.writerow({"section": "unusual_volume", "user": v.user, "day": v.day.isoformat(),
                             "members": v.members})
        for look in review.uncontacted:
            writer.writerow({"section": "no_open_contact", "user": look.user, "at": look.at,
                             "day": look.at[:10], "seq": look.seq, "action": look.action,
                             "statement_id": look.statement_id, "member": look.member_masked,
                             "source": look.source or ""})
    return {"html": html_path, "csv": csv_path}


def summary_lines(review: AccessReview) -> list[str]:
    """A few sentences for the terminal: what a compliance officer should open the report for."""
    period = f"{review.since.isoformat()} to {review.until.isoformat() if review.until else 'now'}"
    chain = (f"audit log intact ({review.chain.entries} entries)" if review.chain.intact
             else f"AUDIT LOG BROKEN: {review.chain.problem.message if review.chain.problem else ''}")
    lines = [f"access review {period}: {review.entries} desk entries by {len(review.users)} users; "
             + chain]
    for u in review.users:
        lines.append(f"  {u.user}: {u.members} members, {u.views} statement views, {u.searches} "
                     f"searches, {u.actions} actions, {u.uncontacted} looks without an open contact")
    lines.append(f"unusual volumes (more than {review.unusual_threshold} members in a day): "
                 + (", ".join(f"{v.user} {v.day.isoformat()} ({v.members})" for v in review.unusual)
                    or "none"))
    lines.append(f"looks at members with no open contact: {len(review.uncontacted)}")
    lines.append(f"audit log head {review.chain.head} ({review.chain.entries} entries, last "
                 f"written {(review.chain.head_at or 'never')[:19]})")
    return lines
