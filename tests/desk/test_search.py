"""Search by each key finds the statement, exactly, over a month composed by the pipeline itself
(claim and address hashes made by compose), on SQLite and PostgreSQL; the email address and the
claim number a support agent types are never stored or logged in clear."""

from __future__ import annotations

import logging

import pytest

from pipeline.desk.lookup import PATIENTS_OWN, SUBSCRIBER
from pipeline.desk.search import SearchKey, SearchRefused, search, term_digest
from pipeline.recipients import mask_member_id
from tests.support.canary import HIDDEN_CLAIM
from tests.support.desk import DeskWorld, ledger_text


def _ids(world: DeskWorld, key: SearchKey, term: str) -> list[str]:
    return [hit.statement_id for hit in search(world.ctx, key, term)]


def test_each_key_finds_the_canarys_statement(world: DeskWorld) -> None:
    sid = world.canary_statement
    assert _ids(world, SearchKey.STATEMENT, f" {sid} ") == [sid]
    assert sid in _ids(world, SearchKey.MEMBER, world.canary_id)
    assert _ids(world, SearchKey.CLAIM, world.claims[world.canary_id][0]) == [sid]
    assert _ids(world, SearchKey.EMAIL, world.canary_email) == [sid]
    assert _ids(world, SearchKey.EMAIL, f"  {world.canary_email.upper()} ") == [sid]  # as typed


def test_every_statement_is_found_by_every_claim_on_it(world: DeskWorld) -> None:
    assert len(world.claims) == len(world.by_member)
    for recipient, claims in world.claims.items():
        for claim in claims:
            assert _ids(world, SearchKey.CLAIM, claim) == [world.by_member[recipient]], (recipient, claim)


def test_a_subscribers_member_id_never_lists_a_patients_own_statement(world: DeskWorld) -> None:
    hits = {hit.statement_id: hit for hit in search(world.ctx, SearchKey.MEMBER, world.canary_id)}
    own = {sid for recipient, sid in world.by_member.items() if recipient.startswith(world.canary_id + "~")}
    assert own and set(hits) == {world.canary_statement}
    assert hits[world.canary_statement].recipient == SUBSCRIBER
    assert hits[world.canary_statement].member_masked == mask_member_id(world.canary_id)
    # the hidden claim (the patient's confidential one) finds the patient's statement only
    assert set(_ids(world, SearchKey.CLAIM, HIDDEN_CLAIM)) == own
    # the patient's own recipient id finds theirs alone, marked as theirs
    recipient = next(r for r, sid in world.by_member.items() if sid in own)
    found = search(world.ctx, SearchKey.MEMBER, recipient)
    assert [hit.statement_id for hit in found] == [world.by_member[recipient]]
    assert found[0].recipient == PATIENTS_OWN


def test_matches_are_exact(world: DeskWorld) -> None:
    member = world.canary_id
    assert _ids(world, SearchKey.MEMBER, member[:-1]) == []
    assert _ids(world, SearchKey.MEMBER, member[:-1] + "_") == []  # a LIKE wildcard is just a character
    assert _ids(world, SearchKey.MEMBER, member[:-1] + "%") == []
    assert _ids(world, SearchKey.MEMBER, member.lower()) == [] or member == member.lower()
    assert _ids(world, SearchKey.STATEMENT, world.canary_statement[:-2]) == []
    assert _ids(world, SearchKey.CLAIM, world.claims[member][0][:-1]) == []
    assert _ids(world, SearchKey.EMAIL, "x" + world.canary_email) == []


def test_a_hit_shows_no_member_id_in_clear(world: DeskWorld) -> None:
    hit = search(world.ctx, SearchKey.STATEMENT, world.canary_statement)[0]
    assert hit.member_id == world.canary_id  # for the desk's own use (a member contact)
    assert world.canary_id not in repr(hit) and hit.member_masked in repr(hit)
    assert hit.status == "verification_pending"
    assert hit.status_label.startswith("Email address to be confirmed")


def test_an_empty_or_absurd_term_is_refused(world: DeskWorld) -> None:
    with pytest.raises(SearchRefused, match="type what to search for"):
        search(world.ctx, SearchKey.EMAIL, "   ")
    with pytest.raises(SearchRefused, match="too long"):
        search(world.ctx, SearchKey.CLAIM, "C" * 1000)


def test_the_term_digest_is_keyed_per_key_and_normalised(world: DeskWorld) -> None:
    email = world.canary_email
    digest = term_digest(world.ctx, SearchKey.EMAIL, email)
    assert digest == term_digest(world.ctx, SearchKey.EMAIL, f" {email.upper()} ") and len(digest) == 64
    assert digest != term_digest(world.ctx, SearchKey.MEMBER, email)
    assert email not in digest
    secret = type(world.ctx.settings.desk_secret)("another desk secret")
    other = world.ctx.settings.model_copy(update={"desk_secret": secret})
    assert term_digest(type(world.ctx)(other, world.ctx.ledger, world.ctx.store, world.ctx.now),
                       SearchKey.EMAIL, email) != digest


def test_what_an_agent_types_is_never_stored_or_logged_in_clear(
        world: DeskWorld, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """The canary's email address and a claim number the ledger has no reason to hold, searched
    for through the desk and through `eob lookup` (which audits each search)."""
    from typer.testing import CliRunner

    from pipeline.cli.main import app

    claim = next(c for c in world.claims[world.canary_id] if c not in ledger_text(world.ctx.ledger))
    email = world.canary_email
    assert email not in ledger_text(world.ctx.ledger).lower()
    monkeypatch.setenv("EOB_WORKSPACE", str(world.ctx.settings.workspace))
    if world.ctx.settings.ledger_url:
        monkeypatch.setenv("EOB_LEDGER_URL", world.ctx.settings.ledger_url)
    monkeypatch.setenv("COLUMNS", "200")
    caplog.set_level(logging.DEBUG)
    assert search(world.ctx, SearchKey.EMAIL, email) and search(world.ctx, SearchKey.CLAIM, claim)
    runner = CliRunner()
    for option, term in (("--email", email), ("--claim", claim)):
        shown = runner.invoke(app, ["lookup", option, term, "--actor", "agent.alice", "--reference", "CALL-1",
                                    "--purpose", "Statement not received"])
        assert shown.exit_code == 0, shown.output
        assert world.canary_statement in shown.output and term not in shown.output
    stored = ledger_text(world.ctx.ledger)
    assert email not in stored.lower() and claim not in stored
    assert term_digest(world.ctx, SearchKey.EMAIL, email) in stored  # what the audit log keeps instead
    logged = "\n".join(record.getMessage() + str(record.__dict__) for record in caplog.records)
    assert email not in logged.lower() and claim not in logged
