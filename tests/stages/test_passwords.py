"""The PDF password policy at start-up: every task and command opens its context through
`open_context`, which refuses a policy below the floor, an unknown one, and one whose email
hint is missing in a language, before anything is opened or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.render import POLICIES, UnknownPasswordPolicy, WeakPasswordPolicy
from pipeline.settings import Settings
from pipeline.stages import ConfigurationRefused, open_context
from pipeline.stages.passwords import MissingPasswordHint, check_password_policy, password_hint
from pipeline.templates import TEMPLATES_DIR


def test_a_run_refuses_to_start_with_the_birthday_policy_unless_the_floor_is_lowered(
    tmp_path: Path,
) -> None:
    workspace = tmp_path
    with pytest.raises(ConfigurationRefused) as caught:  # the task fails without retries
        open_context(Settings(workspace=workspace, password_policy="dob_mmddyyyy"))
    assert isinstance(caught.value.__cause__, WeakPasswordPolicy)
    assert "'dob_mmddyyyy'" in str(caught.value) and "floor of 1 day" in str(caught.value)
    assert not (workspace / "ledger.sqlite").exists()  # refused before the ledger was opened
    lowered = open_context(Settings(workspace=workspace, password_policy="dob_mmddyyyy",
                                    password_min_gpu_days=0))
    assert lowered.settings.password_policy == "dob_mmddyyyy"
    assert open_context(Settings(workspace=workspace)).settings.password_policy == "member_id_dob"


def test_an_unknown_policy_is_refused_at_start_up_naming_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationRefused) as caught:
        open_context(Settings(workspace=tmp_path, password_policy="ssn_last4"))
    assert isinstance(caught.value.__cause__, UnknownPasswordPolicy)
    assert "ssn_last4" in str(caught.value) and "member_id_dob" in str(caught.value)


def test_every_policy_has_its_email_hint_in_every_language() -> None:
    for name in POLICIES:
        check_password_policy(Settings(password_policy=name, password_min_gpu_days=0))
        english, spanish = password_hint(name, "en"), password_hint(name, "es")
        assert english != spanish and english.startswith(("your", "the"))
    assert "member ID" in password_hint("member_id_dob", "en")
    assert password_hint("member_id_dob", "fr") == password_hint("member_id_dob", "en")


def test_a_policy_without_a_hint_in_one_language_is_refused_at_start_up(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    source = (TEMPLATES_DIR / "email" / "password_hints.toml").read_text(encoding="utf-8")
    edited = "\n".join(line for line in source.splitlines()
                       if not line.startswith("es = \"su número de miembro tal"))
    (tmp_path / "email" / "password_hints.toml").write_text(edited, encoding="utf-8")
    with pytest.raises(MissingPasswordHint) as caught:
        check_password_policy(Settings(), tmp_path)
    message = str(caught.value)
    assert "'member_id_dob'" in message and "es" in message and "password_hints.toml" in message
    check_password_policy(Settings(password_policy="dob_mmddyyyy", password_min_gpu_days=0), tmp_path)
