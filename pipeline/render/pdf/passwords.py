"""The member's PDF password: derived from data the member has and knows, chosen by a named policy.

The password is never stored, logged or put in an exception: callers derive it right before
encryption and drop it. Errors here name the policy, never the member's data.

What a policy is worth is what an attacker holding one encrypted statement must try offline:
its guess space (the product of what each part leaves unguessable, see the factors below),
times the cost of one guess. One guess costs one Algorithm 2.B hash, the R6 key derivation
(`security.hash_2b`): checking a candidate against the file's /U value takes exactly one.
`cpu_seconds_per_guess` measures it with this project's own handler on the CPU at hand;
`GPU_GUESSES_PER_SECOND` is a published GPU figure. A policy that one GPU exhausts in less
than the configured floor (`EOB_PASSWORD_MIN_GPU_DAYS`) is refused at start-up
(`check_policy_strength`).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from pipeline.model import Member
from pipeline.render.pdf.security import hash_2b, password_bytes

GPU_GUESSES_PER_SECOND = 595_500.0
"""Guesses per second one GPU makes against an R6 (AES-256) PDF's user password.

Source: hashcat benchmark (v6.2.6-851, built from its master branch), hash mode 10700 "PDF 1.7
Level 8 (Acrobat 10 - 11)" (the Algorithm 2.B check of /U), one NVIDIA GeForce RTX 5090: 595.5 kH/s, as
published in the benchmark collection github.com/dosoos/hashcat_speeds, file
benchmarks/RTX5090.txt: the fastest card it lists for this mode (RTX 4090: 427.2 kH/s; H100
PCIe: 133.3 kH/s). Exhaust times "on one GPU" are on one such card; N cards take 1/N of them."""

SECONDS_PER_DAY = 86_400.0


class UnknownPasswordPolicy(ValueError):
    """The configured policy name is not one we implement."""


class PasswordPolicyError(ValueError):
    """The member record lacks what the policy needs (message names the field only)."""


class WeakPasswordPolicy(ValueError):
    """One GPU tries every password of the policy in less than the configured floor."""


# ---------------------------------------------------------------- what an attacker must guess


@dataclass(frozen=True, slots=True)
class Factor:
    """One part of a password, and how many values an attacker must try for it."""

    name: str
    space: int
    assumption: str


MEMBER_ID = Factor(
    "member ID", 10**9,
    "M + 9 digits, the format of the extracts' member IDs (pipeline/demo/generate.py; the "
    "extract schema allows any ID of letters and digits): the M is on every card and adds "
    "nothing, the 9 digits are taken to be unknown to a stranger and not narrowed by a "
    "pattern. IDs issued in sequence leave only about as many guesses as IDs issued, and "
    "anything the attacker holds that reveals the ID (see docs/statements.md) removes this "
    "factor.")
MEMBER_ID_LAST4 = Factor(
    "last 4 of the member ID", 10**4, "4 digits, all values possible")
DATE_OF_BIRTH = Factor(
    "date of birth", 36_525,
    "any day in 100 years (100 x 365.25); an attacker who knows the member's age to the "
    "year has 365 left")
ZIP_CODE = Factor(
    "ZIP code", 42_000,
    "the ZIP codes in use in the US, about 42,000; an attacker who knows the member's town "
    "has a handful left")


@dataclass(frozen=True, slots=True)
class PasswordPolicy:
    """A named way to form the member's password, and what it is worth offline."""

    name: str
    derive: Callable[[Member], str]
    factors: tuple[Factor, ...]
    example: str  # a password of this policy's shape (not a member's), for timing the hash

    @property
    def guess_space(self) -> int:
        return math.prod(factor.space for factor in self.factors)

    @property
    def bits(self) -> float:
        return math.log2(self.guess_space)

    @property
    def built_from(self) -> str:
        return " + ".join(factor.name for factor in self.factors)

    def gpu_seconds(self, guesses_per_second: float = GPU_GUESSES_PER_SECOND) -> float:
        """Seconds one GPU takes to try every password of the policy (half that on average)."""
        return self.guess_space / guesses_per_second

    def cpu_seconds(self, seconds_per_guess: float) -> float:
        """Seconds one CPU core takes to try them all at a measured cost per guess."""
        return self.guess_space * seconds_per_guess


# ---------------------------------------------------------------- the policies


def _date_of_birth(member: Member) -> str:
    born = member.date_of_birth
    if not isinstance(born, date):
        raise PasswordPolicyError("date_of_birth is missing")
    return f"{born.month:02d}{born.day:02d}{born.year:04d}"


def _dob_mmddyyyy(member: Member) -> str:
    return _date_of_birth(member)


def _last4_member_zip(member: Member) -> str:
    member_id = member.member_id.strip()
    postal = member.postal_code.strip()
    if len(member_id) < 4:
        raise PasswordPolicyError("member_id is shorter than 4 characters")
    if len(postal) < 5:
        raise PasswordPolicyError("postal_code is shorter than 5 characters")
    return member_id[-4:] + postal[:5]


def _member_id_dob(member: Member) -> str:
    """The whole member ID as on the card (letters as capitals), then MMDDYYYY."""
    member_id = member.member_id.strip().upper()
    if not member_id:
        raise PasswordPolicyError("member_id is missing")
    return member_id + _date_of_birth(member)


POLICIES: dict[str, PasswordPolicy] = {
    policy.name: policy for policy in (
        PasswordPolicy("member_id_dob", _member_id_dob, (MEMBER_ID, DATE_OF_BIRTH),
                       "M12345678907041976"),
        PasswordPolicy("last4_member_zip", _last4_member_zip, (MEMBER_ID_LAST4, ZIP_CODE),
                       "678962704"),
        PasswordPolicy("dob_mmddyyyy", _dob_mmddyyyy, (DATE_OF_BIRTH,), "07041976"),
    )
}


def password_policy(policy: str) -> PasswordPolicy:
    """The policy named `policy`; UnknownPasswordPolicy names the ones there are."""
    try:
        return POLICIES[policy]
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise UnknownPasswordPolicy(
            f"unknown password policy {policy!r} (known: {known})"
        ) from None


def member_password(member: Member, policy: str) -> str:
    """The user password for this member's statement under `policy`."""
    return password_policy(policy).derive(member)


# ---------------------------------------------------------------- strength


def check_policy_strength(policy: str, min_gpu_days: float,
                          guesses_per_second: float = GPU_GUESSES_PER_SECOND) -> PasswordPolicy:
    """The policy, if one GPU needs at least `min_gpu_days` to try all its passwords.

    Else WeakPasswordPolicy, naming the policy, its exhaust time, the floor and the policies
    that pass it.
    """
    chosen = password_policy(policy)
    floor = min_gpu_days * SECONDS_PER_DAY
    seconds = chosen.gpu_seconds(guesses_per_second)
    if seconds >= floor:
        return chosen
    passing = [f"{p.name} ({human_duration(p.gpu_seconds(guesses_per_second))})"
               for p in POLICIES.values() if p.gpu_seconds(guesses_per_second) >= floor]
    raise WeakPasswordPolicy(
        f"password policy {policy!r} ({chosen.built_from}: {chosen.guess_space:,} passwords) "
        f"is exhausted in {human_duration(seconds)} on one GPU at {guesses_per_second:,.0f} "
        f"guesses/s, below the floor of {_figure(min_gpu_days)} day(s) "
        f"(EOB_PASSWORD_MIN_GPU_DAYS): set EOB_PASSWORD_POLICY to one that passes "
        f"({', '.join(passing) or 'none does'}; `eob passwords` lists them all), or lower the "
        f"floor only for a demo or a test")


def cpu_seconds_per_guess(policy: str, guesses: int = 200, *,
                          cpu_clock: Callable[[], float] = time.process_time) -> float:
    """CPU seconds one guess at `policy`'s passwords costs on this core, measured now.

    A guess is one Algorithm 2.B hash of this project's R6 handler with a fresh salt, on a
    password of the policy's shape (the hash's work grows with the password's length); the
    hash's round count varies with its input, so many guesses are averaged. CPU time, so
    other work on the machine inflates it less than wall time would.
    """
    if guesses < 1:
        raise ValueError("guesses must be at least 1")
    candidate = password_bytes(password_policy(policy).example)
    salts = [os.urandom(8) for _ in range(guesses)]
    started = cpu_clock()
    for salt in salts:
        hash_2b(candidate, salt)
    return (cpu_clock() - started) / guesses


def human_duration(seconds: float) -> str:
    """A duration as an operator reads it: 0.0613 s, 11.8 min, 3.94 h, 710 days, 1,030 years."""
    if seconds < 60:
        return f"{_figure(seconds)} s"
    if seconds < 3600:
        return f"{_figure(seconds / 60)} min"
    if seconds < 2 * SECONDS_PER_DAY:
        return f"{_figure(seconds / 3600)} h"
    days = seconds / SECONDS_PER_DAY
    if days < 2 * 365.25:
        return f"{_figure(days)} days"
    return f"{_figure(days / 365.25)} years"


def _figure(value: float) -> str:
    """Three significant figures, or whole numbers with thousands separators from 100 up."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
