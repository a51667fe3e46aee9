"""PDF password policies: the password each one gives a real member, what an attacker holding one
encrypted statement must try offline, the floor below which a policy is refused, and the
default policy's password on a real encrypted statement (read back by pikepdf and qpdf)."""

from __future__ import annotations

import io
import math
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pikepdf
import pytest

from pipeline.render import (
    GPU_GUESSES_PER_SECOND,
    POLICIES,
    PasswordPolicyError,
    WeakPasswordPolicy,
    check_policy_strength,
    cpu_seconds_per_guess,
    encrypt_pdf,
    human_duration,
    member_password,
    password_policy,
    render_statement,
)
from pipeline.settings import Settings
from tests.support.factories import make_member, make_statement

OWNER = "owner-secret-for-tests"
DEFAULT_POLICY = Settings.model_fields["password_policy"].default


def test_each_policy_gives_the_password_the_member_can_form_from_card_and_memory() -> None:
    member = make_member(member_id="M000489876", date_of_birth=date(1984, 3, 7),
                         postal_code="62704-1185")
    assert {name: member_password(member, name) for name in POLICIES} == {
        "member_id_dob": "M00048987603071984",
        "last4_member_zip": "987662704",
        "dob_mmddyyyy": "03071984",
    }
    # the member ID as printed on the card, whatever case or padding the extract gave it
    typed = make_member(member_id=" m000489876 ", date_of_birth=date(1984, 3, 7))
    assert member_password(typed, "member_id_dob") == "M00048987603071984"


def test_a_member_without_what_the_policy_needs_is_refused_naming_the_field_only() -> None:
    for broken, field in ((make_member(member_id="  "), "member_id"),
                          (make_member(date_of_birth=None), "date_of_birth")):
        with pytest.raises(PasswordPolicyError) as caught:
            member_password(broken, "member_id_dob")
        message = str(caught.value)
        assert field in message
        for private in ("M000481234", "1984", "03071984", "Alvarez", "62704"):
            assert private not in message


def test_guess_spaces_multiply_what_each_part_leaves_unguessable() -> None:
    dob = password_policy("dob_mmddyyyy")
    zip_policy = password_policy("last4_member_zip")
    strong = password_policy("member_id_dob")
    assert dob.guess_space == 36_525  # 100 years of birthdays
    assert zip_policy.guess_space == 10_000 * 42_000  # last 4 digits x US ZIP codes in use
    assert strong.guess_space == 10**9 * 36_525  # 9 digits after the card's fixed M x birthdays
    assert math.isclose(strong.bits, math.log2(36_525e9)) and 45 < strong.bits < 45.1
    assert math.isclose(dob.bits, 15.157, abs_tol=1e-3)
    for policy in POLICIES.values():
        assert policy.gpu_seconds() == policy.guess_space / GPU_GUESSES_PER_SECOND
        assert policy.cpu_seconds(0.001) == policy.guess_space / 1000
        assert all(factor.assumption for factor in policy.factors)
    # what an operator reads: a GPU tries every birthday in a blink, the default takes years
    assert human_duration(dob.gpu_seconds()) == "0.0613 s"
    assert human_duration(zip_policy.gpu_seconds()) == "11.8 min"
    assert human_duration(strong.gpu_seconds()) == "710 days"
    assert human_duration(dob.cpu_seconds(0.0009)) == "32.9 s"


def test_the_floor_refuses_the_birthday_policy_by_default_and_accepts_it_when_lowered() -> None:
    floor = Settings.model_fields["password_min_gpu_days"].default
    assert floor == 1.0
    with pytest.raises(WeakPasswordPolicy) as caught:
        check_policy_strength("dob_mmddyyyy", floor)
    message = str(caught.value)
    for part in ("'dob_mmddyyyy'", "0.0613 s on one GPU", "floor of 1 day",
                 "EOB_PASSWORD_MIN_GPU_DAYS", "member_id_dob (710 days)"):
        assert part in message, message
    assert "last4_member_zip (" not in message  # 11.8 minutes is not offered as a way out
    with pytest.raises(WeakPasswordPolicy):
        check_policy_strength("last4_member_zip", floor)
    assert check_policy_strength(DEFAULT_POLICY, floor).name == "member_id_dob"
    assert check_policy_strength("dob_mmddyyyy", 0.0).name == "dob_mmddyyyy"
    with pytest.raises(WeakPasswordPolicy):
        check_policy_strength("member_id_dob", 1000.0)  # the floor really is a floor


def test_the_cost_of_one_guess_is_measured_with_the_projects_own_key_derivation() -> None:
    ticks = iter([10.0, 12.0])
    assert cpu_seconds_per_guess("dob_mmddyyyy", 4, cpu_clock=lambda: next(ticks)) == 0.5
    measured = cpu_seconds_per_guess(DEFAULT_POLICY, 20)
    assert 1e-5 < measured < 0.05  # about a millisecond on one core: the R6 hash, not a stub


def test_a_statement_under_the_default_policy_opens_with_its_password_and_not_the_birthday(
    tmp_path: Path,
) -> None:
    statement = make_statement()
    member = statement.member
    password = member_password(member, DEFAULT_POLICY)
    assert password == member.member_id + "03071984"
    data = encrypt_pdf(render_statement(statement), user_password=password, owner_password=OWNER)
    with pikepdf.open(io.BytesIO(data), password=password) as pdf:
        assert pdf.user_password_matched and pdf.encryption.R == 6 and len(pdf.pages) >= 1
    for wrong in ("03071984", member.member_id, "", "000481234" + "03071984"):
        with pytest.raises(pikepdf.PasswordError):
            pikepdf.open(io.BytesIO(data), password=wrong)
    if shutil.which("qpdf") is None:
        return
    target = tmp_path / "statement.pdf"
    target.write_bytes(data)
    good = subprocess.run(["qpdf", f"--password={password}", "--check", str(target)],
                          capture_output=True, text=True, check=False)
    assert good.returncode == 0 and "No syntax or stream encoding errors found" in good.stdout
    birthday = subprocess.run(["qpdf", "--password=03071984", "--check", str(target)],
                              capture_output=True, text=True, check=False)
    assert birthday.returncode != 0 and "invalid password" in birthday.stderr
