"""`eob check --relays` against real Postfix relays: a relay that offers verified STARTTLS passes,
one that offers none fails the check naming the pool and relay, and neither is handed a message."""

from __future__ import annotations

from pathlib import Path

from pipeline.demo.smtp_sink import make_tls_material
from tests.cli.test_check import PRODUCTION, eob_check, lines
from tests.support.postfix import PostfixRelay, bounce_mailbox, free_port, requires_postfix
from tests.support.send import join_pools, pool_file

pytestmark = [requires_postfix]

GOOD, BARE = "127.0.0.63", "127.0.0.64"


def test_check_greets_each_postfix_relay_and_fails_the_one_without_starttls(tmp_path: Path) -> None:
    tls = make_tls_material(tmp_path / "tls", [GOOD, BARE, "mx.nowhere.test"])
    bounces = bounce_mailbox()
    common = {"next_hop": ("127.0.0.65", 25), "next_hop_ca": tls.ca_file,
              "next_hop_name": "mx.nowhere.test", "bounce_domain": "bounces.acmehealth.com",
              "bounce_maildir": bounces}
    with PostfixRelay("good", GOOD, free_port(GOOD), tls=tls, **common) as good, \
            PostfixRelay("bare", BARE, free_port(BARE), tls=None, **common) as bare:
        pools = join_pools(pool_file(good.host, good.port, source=None, name="pool_a"),
                           pool_file(bare.host, bare.port, source=None, name="pool_b"))
        result = eob_check(tmp_path, {**PRODUCTION, "EOB_SMTP_CA_FILE": str(tls.ca_file)},
                           "--relays", pools=pools)
        logs = good.log() + bare.log()
    assert result.exit_code == 1, result.output
    ok = next(line for line in lines(result, "ok") if line.startswith(f"pool pool_a: relay {GOOD}"))
    assert "STARTTLS verified" in ok and "not bound" in ok
    [failed] = lines(result, "FAILED")
    assert failed.startswith(f"pool pool_b: relay {BARE}:{bare.port}") and "STARTTLS" in failed
    assert " from=<" not in logs, "no MAIL FROM reached either relay"
