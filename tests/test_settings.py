"""The settings at start-up: production is the default mode and refuses every shipped test value,
naming each setting and what to set; the demo mode accepts them; README's configuration table
lists every setting with its default, so the documentation cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from pipeline.settings import Settings, SettingsRefused, is_reserved_domain
from pipeline.stages import ConfigurationRefused, open_context
from tests.support import REPO

REFUSED_BY_DEFAULT = ("EOB_VERP_SECRET", "EOB_PDF_OWNER_PASSWORD", "EOB_STATEMENT_ID_KEY",
                      "EOB_DESK_SECRET",
                      "EOB_BOUNCE_DOMAIN", "EOB_MESSAGE_ID_DOMAIN", "EOB_MAIL_FROM_ADDRESS",
                      "EOB_SMTP_EHLO_HOSTNAME", "EOB_POOLS_FILE")


def production(workspace: Path, **overrides: object) -> Settings:
    """A production configuration with nothing left from the shipped test values (an override
    of None leaves that setting to its default)."""
    values: dict[str, object] = {
        "environment": "production", "workspace": workspace,
        "verp_secret": SecretStr("3f1c9a0e7b5d42c88e61f0a9d2b7c4e1"),
        "pdf_owner_password": SecretStr("a9e4c1d7f0b2e8c6d5a3f1e9b7c0d2a4"),
        "statement_id_key": SecretStr("7d2e9b4a1c6f08e3b5a9d7c2e4f1a603"),
        "desk_secret": SecretStr("5b8e2d1f9c4a07e6d3b1a8f2c9e5d704"),
        "bounce_domain": "bounces.acmehealth.com", "message_id_domain": "acmehealth.com",
        "mail_from_address": "statements@acmehealth.com", "smtp_ehlo_hostname": "mailer.acmehealth.com",
        "pools": [{"name": "pool_a", "relay_host": "mta-a.acmehealth.com", "relay_port": 587}],
    }
    values.update(overrides)
    return Settings(**{k: v for k, v in values.items() if v is not None})  # type: ignore[arg-type]


def test_production_is_the_default_and_refuses_every_shipped_test_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("EOB_ENVIRONMENT", raising=False)
    monkeypatch.setenv("EOB_WORKSPACE", str(tmp_path))
    settings = Settings()
    assert settings.environment == "production"
    with pytest.raises(ConfigurationRefused) as caught:  # the task fails without retries
        open_context()
    message = str(caught.value)
    assert isinstance(caught.value.__cause__, SettingsRefused)
    assert [refusal.setting for refusal in caught.value.__cause__.refusals] == list(REFUSED_BY_DEFAULT)
    for name in REFUSED_BY_DEFAULT:
        assert name in message
    assert "never come back" in message and "bounce mailbox" in message  # why, and what to set
    assert "change-me" not in message  # a secret is named, never shown
    assert not (tmp_path / "ledger.sqlite").exists()  # refused before anything was opened


@pytest.mark.parametrize(("override", "setting"), [
    ({"verp_secret": SecretStr("change-me-verp-secret")}, "EOB_VERP_SECRET"),
    ({"pdf_owner_password": SecretStr("  ")}, "EOB_PDF_OWNER_PASSWORD"),
    ({"statement_id_key": SecretStr("change-me-statement-id-key")}, "EOB_STATEMENT_ID_KEY"),
    ({"statement_id_key": SecretStr("")}, "EOB_STATEMENT_ID_KEY"),
    ({"desk_secret": SecretStr("change-me-desk-secret")}, "EOB_DESK_SECRET"),
    ({"bounce_domain": "bounces.eob.example"}, "EOB_BOUNCE_DOMAIN"),
    ({"message_id_domain": "example.com"}, "EOB_MESSAGE_ID_DOMAIN"),
    ({"mail_from_address": "statements@mail.example.org"}, "EOB_MAIL_FROM_ADDRESS"),
    ({"smtp_ehlo_hostname": "mailer.test"}, "EOB_SMTP_EHLO_HOSTNAME"),
    ({"pools": None}, "EOB_POOLS_FILE"),
])
def test_each_test_value_left_alone_is_refused_by_name(
    override: dict[str, object], setting: str, tmp_path: Path,
) -> None:
    with pytest.raises(ConfigurationRefused) as caught:
        open_context(production(tmp_path, **override))
    assert isinstance(caught.value.__cause__, SettingsRefused)
    assert [refusal.setting for refusal in caught.value.__cause__.refusals] == [setting]


def test_production_starts_once_every_test_value_is_replaced(tmp_path: Path) -> None:
    ctx = open_context(production(tmp_path))
    assert ctx.settings.environment == "production"
    assert (tmp_path / "ledger.sqlite").exists()
    # a pool file instead of EOB_POOLS is just as good
    open_context(production(tmp_path, pools=None, pools_file=REPO / "infra" / "pools.toml"))


def test_demo_mode_accepts_the_shipped_test_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOB_ENVIRONMENT", "demo")
    assert open_context(Settings(workspace=tmp_path)).settings.environment == "demo"


def test_an_unknown_mode_is_refused_naming_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOB_ENVIRONMENT", "staging")
    with pytest.raises(ValueError, match="'production' or 'demo'"):
        Settings()


@pytest.mark.parametrize(("domain", "reserved"), [
    ("bounces.eob.example", True), ("EOB.EXAMPLE.", True), ("example.com", True),
    ("mail.example.org", True), ("mailer.test", True), ("localhost", True), ("x.invalid", True),
    ("acmehealth.com", False), ("example-health.com", False), ("myexample.com", False),
])
def test_reserved_example_domains(domain: str, reserved: bool) -> None:
    assert is_reserved_domain(domain) is reserved


# -- the README's configuration table ------------------------------------------------------------


def _readme_table() -> dict[str, tuple[str, str]]:
    """Setting → (default, production) from the table under README's "## Configuration"."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        if not line.startswith("| `EOB_") or len(cells) != 3:
            continue
        names = re.findall(r"`(EOB_[A-Z0-9_]+)`", cells[0])
        defaults = [part.strip() for part in cells[1].split(", ")] if len(names) > 1 else [cells[1]]
        for index, name in enumerate(names):
            assert name not in rows, f"{name} is in the table twice"
            rows[name] = (defaults[min(index, len(defaults) - 1)], cells[2])
    return rows


def _shown(value: object) -> str | None:
    """How a plain default is written in the table; None for those described in words."""
    if isinstance(value, bool) or value is None or isinstance(value, SecretStr | list):
        return None
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def test_the_readme_table_lists_every_setting_with_its_default_and_production_value() -> None:
    table = _readme_table()
    fields = {f"EOB_{name.upper()}": field for name, field in Settings.model_fields.items()}
    assert sorted(set(fields) - set(table)) == [], "settings missing from README's table"
    assert sorted(set(table) - set(fields)) == [], "README's table lists settings that do not exist"
    for name, (default, in_production) in table.items():
        assert default and in_production, f"{name}: the default or the production value is empty"
        shown = None if fields[name].default_factory else _shown(fields[name].default)
        if shown is not None:
            assert f"`{shown}`" in default, f"{name}: README says the default is {default}, not {shown}"


def test_a_country_without_a_holiday_calendar_is_refused() -> None:
    """The mail's business days come from the country's public holidays: one the holidays
    package has no calendar for is refused when the settings load, not at the first render."""
    with pytest.raises(ValidationError, match="mail_holidays_country"):
        Settings(mail_holidays_country="XX")
    assert Settings(mail_holidays_country="GB").mail_holidays_country == "GB"
