"""The suppression list: keyed hashes with a cause, lifted only with a reason, audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.delivery.suppression import SuppressionError, entry, is_suppressed, lift, suppress
from pipeline.stages.reconcile import process_document
from tests.support.reconcile import SECRET, add_sent, address, dsn, events_of, make_context, sid


@pytest.fixture
def ctx(tmp_path: Path):  # type: ignore[no-untyped-def]
    context = make_context(tmp_path)
    yield context
    context.ledger.close()


def test_entries_store_a_keyed_hash_and_the_cause_never_the_address(ctx) -> None:  # type: ignore[no-untyped-def]
    suppress(ctx.ledger, "Jordan@Example.org", cause="user_unknown", statement_id=None, secret=SECRET)
    found = entry(ctx.ledger, "jordan@example.org", SECRET)
    assert found is not None and found.cause == "user_unknown" and found.lifted_at is None
    rows = ctx.ledger.fetch("suppression_get", address_hash=found.address_hash)
    assert "jordan" not in str(rows).lower()


def test_a_lift_needs_a_reason_and_an_actor_and_is_audited(ctx) -> None:  # type: ignore[no-untyped-def]
    add_sent(ctx, 1)
    process_document(ctx, dsn(1), "rfc822", "maildir")
    assert is_suppressed(ctx.ledger, address(1), SECRET)
    with pytest.raises(SuppressionError):
        lift(ctx.ledger, reason="", actor="bob", address=address(1), secret=SECRET)
    assert lift(ctx.ledger, reason="member fixed the mailbox", actor="bob", statement_id=sid(1),
                secret=SECRET) == 1
    assert not is_suppressed(ctx.ledger, address(1), SECRET)
    assert "suppression_lifted" in events_of(ctx, 1)
    with pytest.raises(SuppressionError, match="no active suppression"):
        lift(ctx.ledger, reason="again please", actor="bob", address=address(1), secret=SECRET)
    audit = [a for a in ctx.ledger.fetch("audit_chain") if a["action"] == "suppression_lifted"]
    assert len(audit) == 1 and audit[0]["actor"] == "bob"
    assert ctx.ledger.verify_audit_chain() >= 1


def test_an_address_bouncing_again_after_a_lift_is_suppressed_again(ctx) -> None:  # type: ignore[no-untyped-def]
    suppress(ctx.ledger, address(1), cause="user_unknown", statement_id=None, secret=SECRET)
    lift(ctx.ledger, reason="member says it works now", actor="bob", address=address(1), secret=SECRET)
    suppress(ctx.ledger, address(1), cause="mailbox_disabled", statement_id=None, secret=SECRET)
    found = entry(ctx.ledger, address(1), SECRET)
    assert found is not None and found.cause == "mailbox_disabled" and found.lifted_at is None


def test_cli_lift_and_show(ctx, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from pipeline.cli.reconcile import app

    suppress(ctx.ledger, address(1), cause="user_unknown", statement_id=None, secret=SECRET)
    monkeypatch.setenv("EOB_LEDGER_URL", ctx.settings.ledger_dsn)
    monkeypatch.setenv("EOB_VERP_SECRET", SECRET)
    monkeypatch.setenv("EOB_WORKSPACE", str(ctx.settings.workspace))
    runner = CliRunner()
    shown = runner.invoke(app, ["suppression", "show", "--address", address(1)])
    assert shown.exit_code == 0 and "user_unknown" in shown.output and "active" in shown.output
    refused = runner.invoke(app, ["suppression", "lift", "--address", address(1), "--reason", "x"])
    assert refused.exit_code == 1
    lifted = runner.invoke(app, ["suppression", "lift", "--address", address(1), "--reason",
                                 "confirmed by phone", "--actor", "carol"])
    assert lifted.exit_code == 0, lifted.output
    assert not is_suppressed(ctx.ledger, address(1), SECRET)
