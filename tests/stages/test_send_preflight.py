"""A send task checks its pool on its own machine before it sends anything: source addresses it
can bind (or none, when the relay binds the dedicated address), and the pool's own CA bundle.

Real SQLite ledger, real SMTP servers on loopback with STARTTLS; what is asserted is what an
operator would see: the task's message, what the relay received, the statements' state.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.demo.smtp_sink import SmtpSink, TlsMaterial, make_tls_material
from pipeline.ledger.statuses import Status
from pipeline.stages import PoolMisconfigured, send_stage
from tests.support.send import WallClock, events, make_context, pool_file, queue_statements, statuses

RELAY = "127.0.0.57"
POOL = "pool_t"
NOT_HERE = "203.0.113.10"  # TEST-NET-3: never an address of a test machine


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"), [RELAY])


@pytest.fixture(scope="module")
def rogue(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    """Another CA: it verifies nothing the relay presents."""
    return make_tls_material(tmp_path_factory.mktemp("rogue"), [RELAY])


def test_a_pool_without_source_addresses_sends_unbound(tmp_path: Path, tls: TlsMaterial) -> None:
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx = make_context(tmp_path / "ws", pool_file(sink.host, sink.port, source=None), tls.ca_file,
                           WallClock())
        queued = queue_statements(ctx, POOL, [f"member{n}@example.org" for n in range(3)])
        result = send_stage(ctx, POOL)
    assert result["accepted"] == 3
    assert set(statuses(ctx).values()) == {Status.SENT}
    # the kernel chose the source address; nothing was bound to a pool address
    assert sink.sessions and set(sink.sessions) == {"127.0.0.1"}
    assert len(sink.received) == len(queued)


def test_a_source_address_not_on_this_machine_is_refused_before_anything_is_sent(
    tmp_path: Path, tls: TlsMaterial,
) -> None:
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx = make_context(tmp_path / "ws", pool_file(sink.host, sink.port, source=NOT_HERE),
                           tls.ca_file, WallClock())
        queued = queue_statements(ctx, POOL, ["member@example.org", "other@example.org"])
        before = {item.statement_id: events(ctx, item.statement_id) for item in queued}
        with pytest.raises(PoolMisconfigured) as caught:
            send_stage(ctx, POOL)
    message = str(caught.value)
    assert f"pool {POOL}" in message and NOT_HERE in message
    assert "not an address of this machine" in message and "leave it out" in message
    assert "relay unreachable" not in message
    assert sink.session_count == 0
    for item in queued:  # still queued, no attempt spent, nothing on the timeline since
        assert statuses(ctx)[item.statement_id] == Status.QUEUED
        assert events(ctx, item.statement_id) == before[item.statement_id]
        assert ctx.ledger.statement(item.statement_id)["attempts"] == 0


def test_each_pool_verifies_its_relays_with_its_own_ca_bundle(
    tmp_path: Path, tls: TlsMaterial, rogue: TlsMaterial,
) -> None:
    """EOB_SMTP_CA_FILE names a CA that does not sign this relay; the pool's ca_file does."""
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        pools = pool_file(sink.host, sink.port, extra=f'ca_file = "{tls.ca_file}"')
        ctx = make_context(tmp_path / "ws", pools, rogue.ca_file, WallClock())
        queue_statements(ctx, POOL, ["member@example.org"])
        result = send_stage(ctx, POOL)
    assert result["accepted"] == 1 and len(sink.received) == 1


def test_a_pool_ca_file_relative_to_the_pool_file_is_found(tmp_path: Path, tls: TlsMaterial) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "relays-ca.pem").write_bytes(tls.ca_file.read_bytes())
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        pools = pool_file(sink.host, sink.port, extra='ca_file = "relays-ca.pem"')
        ctx = make_context(workspace, pools, None, WallClock())  # no EOB_SMTP_CA_FILE
        queue_statements(ctx, POOL, ["member@example.org"])
        assert send_stage(ctx, POOL)["accepted"] == 1


@pytest.mark.parametrize("case", ["missing pool ca_file", "pool ca_file not PEM",
                                  "missing EOB_SMTP_CA_FILE"])
def test_an_unusable_ca_bundle_is_refused_before_anything_is_sent(
    case: str, tmp_path: Path, tls: TlsMaterial,
) -> None:
    garbage = tmp_path / "not-a-bundle.pem"
    garbage.write_text("this is not a certificate\n")
    missing = tmp_path / "nowhere" / "ca.pem"
    extra, ca_file, named, why = {
        "missing pool ca_file": (f'ca_file = "{missing}"', tls.ca_file, "ca_file", "cannot be read"),
        "pool ca_file not PEM": (f'ca_file = "{garbage}"', tls.ca_file, "ca_file",
                                 "holds no PEM certificate"),
        "missing EOB_SMTP_CA_FILE": ("", missing, "EOB_SMTP_CA_FILE", "cannot be read"),
    }[case]
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx = make_context(tmp_path / "ws", pool_file(sink.host, sink.port, extra=extra), ca_file,
                           WallClock())
        [item] = queue_statements(ctx, POOL, ["member@example.org"])
        with pytest.raises(PoolMisconfigured) as caught:
            send_stage(ctx, POOL)
    message = str(caught.value)
    assert f"pool {POOL}: {named}" in message and why in message
    assert str(garbage if "PEM" in case else missing) in message
    assert sink.session_count == 0
    assert statuses(ctx)[item.statement_id] == Status.QUEUED
    assert ctx.ledger.statement(item.statement_id)["attempts"] == 0


def test_the_dry_run_needs_no_usable_source_address(tmp_path: Path, tls: TlsMaterial) -> None:
    """An operator's dry run from another machine plans without connecting."""
    ctx = make_context(tmp_path / "ws", pool_file(RELAY, 2525, source=NOT_HERE), tls.ca_file,
                       WallClock())
    queue_statements(ctx, POOL, ["member@example.org"])
    assert send_stage(ctx, POOL, dry_run=True)["queued"] == 1
