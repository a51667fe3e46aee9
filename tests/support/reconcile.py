"""Shared set-up for the reconcile tests: a ledger on a fake clock, statements, real DSNs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.delivery.verp import return_path
from pipeline.demo.dsn import build_dsn
from pipeline.ledger import Ledger, NewStatement
from pipeline.ledger.statuses import Status
from pipeline.settings import Settings
from pipeline.stages.context import Context
from pipeline.storage import LocalObjectStore

RUN_ID = "eob-2026-11"
PERIOD = "2026-11"
START = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
SECRET = "test-verp-secret"
BOUNCE_DOMAIN = "bounces.eob.example"


class FakeNow:
    """An injected clock that only moves when a test says so."""

    def __init__(self, at: datetime = START) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


def make_settings(tmp: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "workspace": tmp, "ledger_url": f"sqlite:///{tmp / 'ledger.sqlite'}",
        "bounce_maildir": tmp / "bounces", "verp_secret": SECRET, "bounce_domain": BOUNCE_DOMAIN,
        "message_id_domain": "eob.example", "reconcile_feeds": [],
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def make_context(tmp: Path, now: FakeNow | None = None, **overrides: object) -> Context:
    now = now or FakeNow()
    settings = make_settings(tmp, **overrides)
    ledger = Ledger.open(settings.ledger_dsn, now=now)
    ledger.start_run(RUN_ID, PERIOD, "test", 1)
    return Context(settings, ledger, LocalObjectStore(tmp / "objects"), now)


def sid(n: int) -> str:
    return f"st-2026-11-{n:016x}"


def member(n: int) -> str:
    return f"M{n:09d}"


def address(n: int, domain: str = "example.org") -> str:
    return f"member{n}@{domain}"


def add_sent(ctx: Context, n: int, *, pool: str = "pool_a", domain: str = "example.org",
             status: Status = Status.SENT, object_key: str | None = None) -> str:
    """A statement of the run that the relay accepted (or only queued, or only rendered)."""
    statement_id = sid(n)
    ctx.ledger.add_statements([NewStatement(statement_id, RUN_ID, PERIOD, member(n), 1, 0, "email",
                                            None, domain, 3, False)])
    ctx.ledger.transition(statement_id, Status.RENDERED, "rendered", object_key=object_key)
    if status is Status.RENDERED:
        return statement_id
    ctx.ledger.transition(statement_id, Status.QUEUED, "queued", pool=pool)
    if status is Status.SENT:
        ctx.ledger.transition(statement_id, Status.SENT, "sent", attempts_increment=1)
    return statement_id


def write_members(ctx: Context, numbers: list[int], domain: str = "example.org") -> Path:
    """The run's member contact file, as ingest writes it (only the columns reconcile and the
    sender read)."""
    folder = ctx.settings.work_dir / RUN_ID
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({
        "member_id": [member(n) for n in numbers],
        "email": [address(n, domain) for n in numbers],
        "language": ["en"] * len(numbers),
        "email_valid": [True] * len(numbers),
        "edelivery_consent": ["Y"] * len(numbers),
        "shard": pa.array([0] * len(numbers), pa.int32()),
    })
    pq.write_table(table, folder / "members.parquet")
    return folder / "members.parquet"


def dsn(n: int, *, status: str = "5.1.1", diagnostic: str = "550 5.1.1 user unknown",
        action: str = "failed", secret: str = SECRET, domain: str = "example.org",
        extra_headers: str = "", verp: bool = True) -> bytes:
    """A real RFC 3464 DSN for statement n, addressed to its VERP return path.

    verp=False: addressed to the bare bounce mailbox instead (no token anywhere), as a relay
    that rewrote the return path or a stranger writing to the mailbox would; our Message-ID
    and X-EOB-Statement header are still in the returned headers.
    """
    statement_id = sid(n)
    headers = (f"From: Member Statements <statements@eob.example>\r\nTo: {address(n, domain)}\r\n"
               f"Subject: Your statement\r\nMessage-ID: <{statement_id}@eob.example>\r\n"
               f"X-EOB-Statement: {statement_id}\r\n{extra_headers}\r\n").encode()
    return build_dsn(reporting_mta="mx.example.org",
                     envelope_to=(return_path(statement_id, secret, BOUNCE_DOMAIN) if verp
                                  else f"bounces@{BOUNCE_DOMAIN}"),
                     original_message_id=f"<{statement_id}@eob.example>", original_headers=headers,
                     recipient=address(n, domain), action=action, status=status,
                     diagnostic=diagnostic, arrival_date=START)


def ses_notification(n: int, kind: str = "Bounce", *, bounce_type: str = "Permanent",
                     status: str = "5.1.1", diagnostic: str = "smtp; 550 5.1.1 user unknown",
                     sns: bool = True, verp: bool = True) -> str:
    """An SES notification as SNS delivers it to SQS (or raw with sns=False).

    verp=False: the message was sent from the bare bounce address (no token), so only our
    Message-ID and X-EOB-Statement header name the statement.
    """
    statement_id = sid(n)
    body: dict[str, object] = {
        "notificationType": kind,
        "mail": {"timestamp": "2026-12-01T06:00:00.000Z",
                 "source": (return_path(statement_id, SECRET, BOUNCE_DOMAIN) if verp
                            else f"bounces@{BOUNCE_DOMAIN}"),
                 "messageId": f"0100018c-{n:08d}", "destination": [address(n)],
                 "headers": [{"name": "X-EOB-Statement", "value": statement_id}],
                 "commonHeaders": {"messageId": f"<{statement_id}@eob.example>",
                                   "subject": "Your statement"}},
    }
    if kind == "Bounce":
        body["bounce"] = {"bounceType": bounce_type, "bounceSubType": "General",
                          "bouncedRecipients": [{"emailAddress": address(n), "action": "failed",
                                                 "status": status, "diagnosticCode": diagnostic}]}
    elif kind == "Complaint":
        body["complaint"] = {"complainedRecipients": [{"emailAddress": address(n)}],
                             "complaintFeedbackType": "abuse"}
    elif kind == "Delivery":
        body["delivery"] = {"recipients": [address(n)], "smtpResponse": "250 ok"}
    if not sns:
        return json.dumps(body)
    return json.dumps({"Type": "Notification", "MessageId": f"sns-{n}-{kind}",
                       "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
                       "Message": json.dumps(body)})


def status_of(ctx: Context, n: int) -> str:
    row = ctx.ledger.statement(sid(n))
    assert row is not None
    return str(row["status"])


def events_of(ctx: Context, n: int) -> list[str]:
    return [e["event"] for e in ctx.ledger.timeline(sid(n))]
