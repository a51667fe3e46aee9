"""`eob relay-config postfix`: the pools' listeners and transports for a relay that binds each
pool's dedicated address, checked as text and then run by a real Postfix (Debian's package): the
pipeline's mail for each pool leaves from that pool's address over TLS, and Postfix's DSN for an
unknown user flows back through the reconcile stage into verification."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.delivery.pools import PoolConfigError, parse_pool_file
from pipeline.delivery.relay_config import postfix_files
from pipeline.demo.smtp_sink import Decision, SmtpSink, make_tls_material
from pipeline.reconcile.feeds import open_feed
from pipeline.stages.reconcile import reconcile_stage
from pipeline.stages.send import send_stage
from tests.support.postfix import PostfixRelay, bounce_mailbox, free_port, requires_postfix, wait_for
from tests.support.send import WallClock, join_pools, make_context, pool_file, queue_statements, statuses

SINK, SINK_NAME = "127.0.0.80", "mx.far.test"
IN_A, IN_B = "127.0.0.81", "127.0.0.82"      # where the pipeline hands each pool's mail over
OUT_A, OUT_B = "127.0.0.83", "127.0.0.84"    # each pool's dedicated address
BOUNCES = "bounces.eob.test"


def two_pools(port_a: int, port_b: int) -> str:
    return join_pools(pool_file(IN_A, port_a, source=None, name="pool_a"),
                      pool_file(IN_B, port_b, source=None, name="pool_b"))


def test_each_pool_gets_a_listener_and_a_transport_bound_to_its_address() -> None:
    config = parse_pool_file(two_pools(2601, 2602))
    files = postfix_files(config, {"pool_a": "203.0.113.10", "pool_b": "203.0.113.11"},
                          bounce_domain="bounces.acmehealth.com", helo={"pool_a": "mta-a.acmehealth.com"})
    assert f"{IN_A}:2601 inet n - n - - smtpd" in files.master_cf
    assert "-o content_filter=eob_pool_a:\n" in files.master_cf
    transport_b = "eob_pool_b unix - - n - - smtp\n  -o syslog_name=postfix/pool_b\n"
    assert transport_b + "  -o smtp_bind_address=203.0.113.11" in files.master_cf
    assert "smtp_helo_name=mta-a.acmehealth.com" in files.master_cf
    assert files.master_cf.count("smtp_tls_security_level=verify") == 2
    assert files.master_cf.count("smtpd_tls_security_level=encrypt") == 2
    assert "eob_pool_a_destination_concurrency_limit = 2" in files.main_cf, "the default provider's"
    with pytest.raises(PoolConfigError, match="missing for pool_b"):
        postfix_files(config, {"pool_a": "203.0.113.10"}, bounce_domain="b.example")
    with pytest.raises(PoolConfigError, match="never travel unencrypted"):
        postfix_files(config, {"pool_a": "a", "pool_b": "b"}, bounce_domain="b.example", tls_level="may")


@requires_postfix
def test_a_real_postfix_with_the_generated_pools_sends_each_pool_from_its_address(tmp_path: Path) -> None:
    def far_end(rcpt: str) -> Decision:
        if rcpt.startswith("unknown"):
            return Decision("reject", 550, "5.1.1", "User unknown in virtual mailbox table")
        return Decision("accept")

    sink_tls = make_tls_material(tmp_path / "far", [SINK_NAME])
    relay_tls = make_tls_material(tmp_path / "relay", [IN_A, IN_B])
    port_a, port_b = free_port(IN_A), free_port(IN_B)
    pools = two_pools(port_a, port_b)
    with SmtpSink(SINK, 0, tls=sink_tls, behaviour=far_end, hostname=SINK_NAME) as sink:
        files = postfix_files(parse_pool_file(pools), {"pool_a": OUT_A, "pool_b": OUT_B},
                              bounce_domain=BOUNCES, nexthop=f"[{SINK}]:{sink.port}")
        bounces = bounce_mailbox()
        with PostfixRelay("pools", IN_A, 0, (SINK, sink.port), sink_tls.ca_file, SINK_NAME, BOUNCES,
                          bounces, tls=relay_tls, extra_main=files.main_cf, extra_master=files.master_cf,
                          listeners=((IN_A, port_a), (IN_B, port_b))) as relay:
            ctx = make_context(tmp_path / "ws", pools, relay_tls.ca_file, WallClock(),
                               bounce_domain=BOUNCES, message_id_domain="eob.test")
            to_a = queue_statements(ctx, "pool_a", ["member1@gmail.com", "unknown1@gmail.com"])
            to_b = queue_statements(ctx, "pool_b", ["member2@yahoo.com"], first=2)
            assert send_stage(ctx, "pool_a")["accepted"] == 2 and send_stage(ctx, "pool_b")["accepted"] == 1
            wait_for(lambda: len(sink.received) == 2 and len(list((bounces / "new").iterdir())) == 1,
                     "two deliveries and one DSN", relays=(relay,))
            result = reconcile_stage(ctx, [open_feed(f"maildir://{bounces}", ctx.settings)])
    seen = {rcpt: (r.peer_ip, r.tls) for r in sink.received for rcpt in r.rcpt_to}
    assert seen == {"member1@gmail.com": (OUT_A, True), "member2@yahoo.com": (OUT_B, True)}
    assert result["messages"] == 1
    final = statuses(ctx)
    assert final[to_a[1].statement_id] == "verification_pending"
    assert final[to_a[0].statement_id] == final[to_b[0].statement_id] == "sent"
