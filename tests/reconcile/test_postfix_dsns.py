"""Real Postfix DSNs: each far-end refusal below is returned by Debian's Postfix as the DSN it
writes itself, and the parser and classifier must put it in the right queue.

The far end answers as large providers and filters do (unknown user, disabled account, full
mailbox, spam and virus filters, a blocklisted sending address, greylisting, DMARC). Temporary
refusals are returned at once (``maximal_queue_lifetime = 0``) so their DSNs say what Postfix
says when it finally gives up. Set EOB_SAVE_POSTFIX_DSNS=folder to keep the DSNs: the set in
tests/data/postfix_dsn/ was made that way and is a corpus of bench/bounces.py.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from pathlib import Path

import pytest

from pipeline.demo.smtp_sink import Decision, SmtpSink, TlsMaterial, make_tls_material
from pipeline.reconcile.bounces import parse_bounce
from tests.support.postfix import PostfixRelay, bounce_mailbox, free_port, requires_postfix, wait_for

pytestmark = [requires_postfix]

BOUNCE_DOMAIN = "bounces.eob.test"
SINK, SINK_NAME, RELAY, POOL_IP = "127.0.0.66", "mx.far.test", "127.0.0.67", "127.0.0.73"

# local part → (the far end's reply at RCPT, the queue the DSN must land in)
CASES: dict[str, tuple[Decision, str]] = {
    "unknown": (Decision("reject", 550, "5.1.1", "<unknown@far.test>: Recipient address rejected: "
                                                 "User unknown in virtual mailbox table"), "verify"),
    "noaccount": (Decision("reject", 550, "5.1.1", "The email account that you tried to reach does "
                                                   "not exist. Please try double-checking the "
                                                   "recipient's email address"), "verify"),
    "disabled": (Decision("reject", 550, "5.2.1", "The email account that you tried to reach is "
                                                  "disabled"), "verify"),
    "fullperm": (Decision("reject", 552, "5.2.2", "Mailbox full"), "retry"),
    "fulltemp": (Decision("reject", 452, "4.2.2", "The email account that you tried to reach is "
                                                  "over quota"), "retry"),
    "spam": (Decision("reject", 554, "5.7.1", "Message rejected as spam by Content Filtering"),
             "paper"),
    "virus": (Decision("reject", 554, "5.7.1", "The message contains a virus: Eicar-Test-Signature"),
              "paper"),
    "listed": (Decision("reject", 554, "5.7.1", f"Service unavailable; Client host [{POOL_IP}] "
                                                "blocked using zen.spamhaus.org"), "retry"),
    "greylist": (Decision("reject", 450, "4.7.1", "<greylist@far.test>: Recipient address "
                                                  "rejected: Greylisted, please try again later"),
                 "retry"),
    "dmarc": (Decision("reject", 550, "5.7.26", "Unauthenticated email from eob.test is not "
                                                "accepted due to domain's DMARC policy"), "retry"),
}


def far_end(rcpt: str) -> Decision:
    case = CASES.get(rcpt.split("@")[0])
    return case[0] if case else Decision("accept")


@pytest.fixture(scope="module")
def dsns(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Local part → the DSN Postfix returned for it."""
    folder = tmp_path_factory.mktemp("tls")
    sink_tls: TlsMaterial = make_tls_material(folder / "far", [SINK_NAME])
    relay_tls = make_tls_material(folder / "relay", [RELAY])
    bounces = bounce_mailbox()
    with SmtpSink(SINK, 0, tls=sink_tls, behaviour=far_end, hostname=SINK_NAME) as sink, \
            PostfixRelay("dsn", RELAY, free_port(RELAY), (SINK, sink.port), sink_tls.ca_file,
                         SINK_NAME, BOUNCE_DOMAIN, bounces, tls=relay_tls, bind_address=POOL_IP,
                         settings={"maximal_queue_lifetime": "0",
                                   "bounce_queue_lifetime": "0"}) as relay:
        with smtplib.SMTP(relay.host, relay.port) as client:
            client.starttls(context=ssl.create_default_context(cafile=str(relay_tls.ca_file)))
            for local in CASES:
                message = (f"From: statements@eob.test\r\nTo: {local}@far.test\r\n"
                           f"Message-ID: <{local}.st-2026-11@eob.test>\r\n"
                           "Subject: Your Explanation of Benefits\r\n\r\nA statement.\r\n")
                client.sendmail(f"bounces+{local}@{BOUNCE_DOMAIN}", [f"{local}@far.test"],
                                message.encode())
        new = bounces / "new"
        wait_for(lambda: len(list(new.iterdir())) == len(CASES), f"{len(CASES)} DSNs",
                 relays=(relay,))
        received = [path.read_bytes() for path in sorted(new.iterdir())]
    by_case = {}
    for data in received:
        token = parse_bounce(data, bounce_domain=BOUNCE_DOMAIN).verp_token
        assert token in CASES, token
        by_case[token] = data
    if os.environ.get("EOB_SAVE_POSTFIX_DSNS"):
        target = Path(os.environ["EOB_SAVE_POSTFIX_DSNS"])
        target.mkdir(parents=True, exist_ok=True)
        for local, data in by_case.items():
            (target / f"postfix-{local}.eml").write_bytes(data)
    return by_case


@pytest.mark.parametrize("local", list(CASES))
def test_a_real_postfix_dsn_lands_in_the_right_queue(dsns: dict[str, bytes], local: str) -> None:
    data = dsns[local]
    assert b"X-Postfix-Queue-ID" in data, "written by Postfix"
    bounce = parse_bounce(data, bounce_domain=BOUNCE_DOMAIN)
    [outcome] = bounce.recipients
    assert outcome.recipient == f"{local}@far.test"
    assert bounce.original_message_id == f"<{local}.st-2026-11@eob.test>"
    assert outcome.action == "failed"
    expected = CASES[local][1]
    assert str(outcome.classification.queue) == expected, (
        f"{local}: {outcome.classification.category} → {outcome.classification.queue}")
    if expected == "verify":
        assert outcome.classification.recipient_caused
