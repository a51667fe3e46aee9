"""`eob check`: the whole configuration validated on this machine, nothing sent. Each check is
listed as ok or FAILED with what to fix, and any failure makes the exit code 1. `--relays`
greets real loopback relays (EHLO, verified STARTTLS, QUIT) and sends them no mail."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from pipeline.cli.main import app
from pipeline.demo.smtp_sink import SmtpSink, TlsMaterial, make_tls_material
from tests.support.send import pool_file

RELAY = "127.0.0.58"
SOURCE = "127.0.0.44"
NOT_HERE = "203.0.113.10"  # TEST-NET-3: never an address of a test machine

PRODUCTION = {
    "EOB_ENVIRONMENT": "production",
    "EOB_VERP_SECRET": "3f1c9a0e7b5d42c88e61f0a9d2b7c4e1",
    "EOB_PDF_OWNER_PASSWORD": "a9e4c1d7f0b2e8c6d5a3f1e9b7c0d2a4",
    "EOB_STATEMENT_ID_KEY": "7d2e9b4a1c6f08e3b5a9d7c2e4f1a603",
    "EOB_DESK_SECRET": "5b8e2d1f9c4a07e6d3b1a8f2c9e5d704",
    "EOB_BOUNCE_DOMAIN": "bounces.acmehealth.com",
    "EOB_MESSAGE_ID_DOMAIN": "acmehealth.com",
    "EOB_MAIL_FROM_ADDRESS": "statements@acmehealth.com",
    "EOB_SMTP_EHLO_HOSTNAME": "mailer.acmehealth.com",
    "EOB_SMTP_TIMEOUT_SECONDS": "5",
}


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"), [RELAY])


def eob_check(tmp_path: Path, env: dict[str, str], *args: str, pools: str | None = None) -> Result:
    environment = {"EOB_WORKSPACE": str(tmp_path / "ws"), **env}
    if pools is not None:
        (tmp_path / "pools.toml").write_text(pools)
        environment["EOB_POOLS_FILE"] = str(tmp_path / "pools.toml")
    return CliRunner().invoke(app, ["check", *args], env=environment)


def lines(result: Result, status: str) -> list[str]:
    return [line.removeprefix(status).strip() for line in result.output.splitlines()
            if line.startswith(status)]


def test_every_problem_is_listed_with_what_to_fix_and_the_exit_code_is_1(tmp_path: Path) -> None:
    """The shipped values in production, a source address that is not this machine's and a
    missing CA bundle: each on a line of its own, and nothing was opened or sent."""
    missing = tmp_path / "relays-ca.pem"
    result = eob_check(tmp_path, {"EOB_ENVIRONMENT": "production"},
                       pools=pool_file("mta.acmehealth.com", 587, source=NOT_HERE,
                                       extra=f'ca_file = "{missing}"'))
    assert result.exit_code == 1, result.output
    failed = lines(result, "FAILED")
    names = [line.split(":", 1)[0] for line in failed]
    assert names == ["EOB_VERP_SECRET", "EOB_PDF_OWNER_PASSWORD", "EOB_STATEMENT_ID_KEY", "EOB_DESK_SECRET",
                     "EOB_BOUNCE_DOMAIN",
                     "EOB_MESSAGE_ID_DOMAIN", "EOB_MAIL_FROM_ADDRESS", "EOB_SMTP_EHLO_HOSTNAME",
                     "pool pool_t", "pool pool_t"]
    assert any(f"source address {NOT_HERE} is not an address of this machine" in line for line in failed)
    assert any(f"{missing} cannot be read" in line for line in failed)
    assert any("set the domain whose MX delivers to the bounce mailbox" in line for line in failed)
    passed = [line.split(":", 1)[0] for line in lines(result, "ok")]
    assert {"settings", "EOB_PASSWORD_POLICY", "templates", "pools", "DKIM"} <= set(passed)
    assert "10 of" in result.output.splitlines()[-1] and "checks failed" in result.output
    assert "change-me" not in result.output
    assert not (tmp_path / "ws").exists()  # no ledger, no object store opened


def test_a_production_configuration_passes_and_each_relay_is_greeted_without_mail(
    tmp_path: Path, tls: TlsMaterial,
) -> None:
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        result = eob_check(tmp_path, PRODUCTION, "--relays",
                           pools=pool_file(sink.host, sink.port, source=SOURCE,
                                           extra=f'ca_file = "{tls.ca_file}"'))
    assert result.exit_code == 0, result.output
    assert lines(result, "FAILED") == []
    relay = next(line for line in lines(result, "ok") if line.startswith(f"pool pool_t: relay {RELAY}"))
    assert "STARTTLS verified" in relay and f"from {SOURCE}" in relay
    assert sink.sessions == [SOURCE]  # one greeting, from the pool's address
    assert sink.attempts == [] and sink.received == []  # no RCPT, no message
    assert result.output.splitlines()[-1].endswith("checks passed; nothing was sent")


def test_a_relay_whose_certificate_does_not_verify_fails_the_check(tmp_path: Path, tls: TlsMaterial) -> None:
    rogue = make_tls_material(tmp_path / "rogue", [RELAY])
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        result = eob_check(tmp_path, PRODUCTION, "--relays",
                           pools=pool_file(sink.host, sink.port, source=None,
                                           extra=f'ca_file = "{rogue.ca_file}"'))
    assert result.exit_code == 1, result.output
    [failed] = lines(result, "FAILED")
    assert failed.startswith(f"pool pool_t: relay {RELAY}:{sink.port}")
    assert "certificate verification failed" in failed and "not bound" in failed
    assert sink.received == []


@pytest.mark.parametrize(("env", "expected"), [
    ({"EOB_SHARDS": "0"}, "EOB_SHARDS: Input should be greater than or equal to 1"),
    ({"EOB_POOLS": '[{"name": "p", "relay_host": "h", "source_ip": "mta-a"}]'},
     "EOB_POOLS[0].source_ip: Value error, 'mta-a' is not an IP address"),
])
def test_a_setting_that_does_not_parse_is_named(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    result = eob_check(tmp_path, {"EOB_ENVIRONMENT": "demo", **env})
    assert result.exit_code == 1
    [failed] = lines(result, "FAILED")
    assert failed.startswith(f"settings: {expected}")


def test_the_demo_configuration_passes_in_demo_mode(tmp_path: Path) -> None:
    result = eob_check(tmp_path, {"EOB_ENVIRONMENT": "demo"})
    assert result.exit_code == 0, result.output
    [mode] = [line for line in lines(result, "ok") if line.startswith("EOB_ENVIRONMENT")]
    assert "demo: the shipped test values are accepted" in mode and "EOB_VERP_SECRET" in mode
