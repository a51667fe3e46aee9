"""Support desk accounts: local users with argon2id password hashes, or users of the insurer's
identity provider (OIDC); their roles; sign-in with lockout. Every sign-in, failed or not, and
every change to an account is an audit entry.

Why it works this way:
- A refused sign-in never says which half was wrong, and an unknown user name costs the same
  argon2 verification as a known one (against a dummy hash), so neither the message nor the time
  tells an attacker which accounts exist.
- A failed attempt under a name that is not an account is audited with that name hashed under
  `desk_secret`, never in clear: people type their password into the user box.
- Consecutive failures lock an account for `web_lockout_minutes` after `web_max_failed_signins`.
  An attempt is admitted to the password check, and counted as a failure, by one UPDATE before
  argon2 runs; a right password then ends the count only if no lock was set meanwhile. So
  however many attempts arrive at once, no more than the limit are checked before the lock, and
  a right password inside a locked window is refused.
- An unknown name and a wrong password do the same work: the same statements and one argon2
  verification each (against a dummy hash when there is no account or no password).
- An account of the identity provider is the person it names by (issuer, `sub`); the name it
  shows (preferred_username) only names a new account, and never one that is a local account's
  or another person's.
- An administrator changes other people's roles and access, never their own.
- A hash made with older argon2 parameters is replaced at the next successful sign-in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pipeline.clock import iso, moment
from pipeline.desk.audit import DeskAction, record
from pipeline.desk.errors import DeskError
from pipeline.desk.permissions import Permission, Role, allowed
from pipeline.desk.reasons import checked_reason
from pipeline.ledger import Ledger
from pipeline.ledger.sql import clause
from pipeline.settings import Settings

PASSWORD_HASHER = PasswordHasher()
"""argon2id with argon2-cffi's defaults (RFC 9106's low-memory profile); a caller may pass its own
(tests, or a deployment that raises the cost): hashes made with other parameters are replaced at
the next sign-in."""

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
"""Long passphrases are welcome; a megabyte of password is a way to burn the server's CPU."""

UNKNOWN_USER = "(unknown user)"
"""The actor of a failed sign-in under a name that is no account."""

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,127}$")
_ROLE_NAMES = frozenset(role.value for role in Role)


class SignInRefused(DeskError):
    """A sign-in was refused; the message never says whether the name or the password was wrong."""

    def __init__(self, message: str = "wrong user name or password") -> None:
        super().__init__(message)


class AccountLocked(SignInRefused):
    """Too many failed sign-ins in a row: the account is locked until `until` (ISO UTC)."""

    def __init__(self, until: str) -> None:
        self.until = until
        super().__init__(f"too many failed sign-ins: this account is locked until {until[11:16]} "
                         "UTC; an administrator can unlock it sooner")


class OidcNameTaken(SignInRefused):
    """The identity provider's user name is already a local account's or another person's."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the desk user name {name!r} belongs to another account; ask an "
                         "administrator")


class AccountError(DeskError):
    """An account change an administrator asked for cannot be made; the message says why."""


class UnknownUser(AccountError):
    def __init__(self, username: str) -> None:
        super().__init__(f"there is no desk user {username!r} (see `eob users list`)")


class WeakPassword(AccountError):
    pass


@dataclass(frozen=True, slots=True)
class User:
    """A desk account as the app sees it: never its password hash. `locked_until` is set only
    while a lockout lasts."""

    username: str
    display_name: str
    roles: frozenset[Role]
    active: bool
    locked_until: str | None
    oidc: bool
    last_signin_at: str | None = None

    def may(self, permission: Permission) -> bool:
        """May this user do it? A disabled account may do nothing."""
        return self.active and allowed(self.roles, permission)


def normalise_username(username: str) -> str:
    """User names are compared in lower case; refused unless made of letters, digits and . _ @ + -."""
    name = username.strip().lower()
    if not _USERNAME.match(name):
        raise AccountError("a user name is 1 to 128 letters, digits and . _ @ + - (starting with a "
                           "letter or digit)")
    return name


def check_password(username: str, password: str) -> None:
    """The local password rule: long enough to resist guessing, bounded, and not the user name."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD_LENGTH} characters "
                           "(a passphrase of a few words is easiest)")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    if password.strip().lower() == username:
        raise WeakPassword("a password must not be the user name")


def _roles(roles: Iterable[Role | str]) -> frozenset[Role]:
    chosen: set[Role] = set()
    for role in roles:
        try:
            chosen.add(Role(role))
        except ValueError:
            raise AccountError(f"unknown role {role!r}: one of "
                               f"{', '.join(r.value for r in Role)}") from None
    return frozenset(chosen)


# -- reading ----------------------------------------------------------------------------------
def _user(row: Mapping[str, Any], roles: Iterable[str], now: str) -> User:
    locked = row["locked_until"]
    return User(row["username"], row["display_name"], frozenset(Role(r) for r in roles),
                bool(row["active"]), locked if locked and locked > now else None, bool(row["oidc"]),
                row["last_signin_at"])


def get_user(ledger: Ledger, username: str) -> User | None:
    try:
        name = normalise_username(username)
    except AccountError:
        return None
    row = ledger.fetch_one("desk_user_get", username=name)
    if row is None:
        return None
    roles = [r["role"] for r in ledger.fetch("desk_user_roles", username=name)]
    return _user(row, roles, ledger.now())


def list_users(ledger: Ledger) -> list[User]:
    roles: dict[str, list[str]] = {}
    for row in ledger.fetch("desk_all_user_roles"):
        roles.setdefault(row["username"], []).append(row["role"])
    now = ledger.now()
    return [_user(row, roles.get(row["username"], []), now)
            for row in ledger.fetch("desk_users_list")]


def _require(ledger: Ledger, username: str) -> str:
    name = normalise_username(username)
    if ledger.fetch_one("desk_user_get", username=name) is None:
        raise UnknownUser(name)
    return name


def _current(ledger: Ledger, name: str) -> User:
    user = get_user(ledger, name)
    if user is None:  # removed meanwhile: accounts are never deleted, so only by hand
        raise UnknownUser(name)
    return user


# -- administration (each change audited as user_admin) ---------------------------------------
def create_user(ledger: Ledger, username: str, display_name: str, roles: Iterable[Role | str],
                password: str | None, *, actor: str, source: str | None = None,
                reason: str | None = None, hasher: PasswordHasher = PASSWORD_HASHER) -> User:
    """A new account with these roles. With no password it is an account of the identity
    provider: the first company sign-in under its name binds that person to it for good."""
    name = normalise_username(username)
    display = display_name.strip() or name
    if len(display) > 120:
        raise AccountError("a display name has at most 120 characters")
    chosen = _roles(roles)
    why = _why(reason)
    if password is not None:
        check_password(name, password)
    digest = hasher.hash(password) if password is not None else None
    with ledger.begin() as conn:
        if conn.execute(clause("desk_user_insert"), {
                "username": name, "display_name": display, "password_hash": digest,
                "oidc": int(digest is None), "at": ledger.now()}).rowcount != 1:
            raise AccountError(f"the desk user {name!r} already exists")
        for role in sorted(chosen):
            conn.execute(clause("desk_user_role_add"), {"username": name, "role": role.value})
    _admin_audit(ledger, actor, source, name, "created", roles=chosen,
                 password=password is not None, reason=why)
    return _current(ledger, name)


def set_roles(ledger: Ledger, username: str, roles: Iterable[Role | str], *, actor: str,
              source: str | None = None, reason: str | None = None) -> User:
    """Replace the user's roles (an empty set leaves an account that may do nothing)."""
    name = _require(ledger, username)
    _not_oneself(actor, name, "you cannot change your own roles: another administrator must "
                              "change your roles")
    chosen = _roles(roles)
    why = _why(reason)
    _replace_roles(ledger, name, chosen)
    _admin_audit(ledger, actor, source, name, "roles", roles=chosen, reason=why)
    return _current(ledger, name)


def set_password(ledger: Ledger, username: str, password: str, *, actor: str,
                 source: str | None = None, reason: str | None = None,
                 hasher: PasswordHasher = PASSWORD_HASHER) -> None:
    """A new local password; it also clears a lockout."""
    name = _require(ledger, username)
    check_password(name, password)
    why = _why(reason)
    ledger.execute("desk_user_set_password", username=name, password_hash=hasher.hash(password),
                   at=ledger.now())
    _admin_audit(ledger, actor, source, name, "password", reason=why)


def set_active(ledger: Ledger, username: str, active: bool, *, actor: str,
               source: str | None = None, reason: str | None = None) -> User:
    """Disable (or enable again) an account: a disabled one cannot sign in and may do nothing.
    Accounts are disabled, never deleted, so the audit log's names keep meaning someone."""
    name = _require(ledger, username)
    _not_oneself(actor, name, "you cannot disable or enable your own account: another "
                              "administrator must do it")
    why = _why(reason)
    ledger.execute("desk_user_set_active", username=name, active=int(active), at=ledger.now())
    _admin_audit(ledger, actor, source, name, "enabled" if active else "disabled", reason=why)
    return _current(ledger, name)


def unlock(ledger: Ledger, username: str, *, actor: str, source: str | None = None,
           reason: str | None = None) -> User:
    """End a lockout now and forget the failures counted toward the next one."""
    name = _require(ledger, username)
    why = _why(reason)
    ledger.execute("desk_user_unlock", username=name, at=ledger.now())
    _admin_audit(ledger, actor, source, name, "unlocked", reason=why)
    return _current(ledger, name)


def _not_oneself(actor: str, name: str, refusal: str) -> None:
    """Two people for a change of access: an administrator cannot give themselves roles, nor
    lock themselves out by mistake."""
    if actor.strip().lower() == name:
        raise AccountError(refusal)


def _why(reason: str | None) -> str | None:
    """An administrator's reason, checked before anything changes (None when none was given)."""
    return checked_reason(reason) if reason is not None and reason.strip() else None


def _replace_roles(ledger: Ledger, name: str, roles: frozenset[Role]) -> None:
    with ledger.begin() as conn:
        conn.execute(clause("desk_user_roles_clear"), {"username": name})
        for role in sorted(roles):
            conn.execute(clause("desk_user_role_add"), {"username": name, "role": role.value})


def _admin_audit(ledger: Ledger, actor: str, source: str | None, user: str, change: str, *,
                 roles: frozenset[Role] | None = None, password: bool | None = None,
                 reason: str | None = None) -> None:
    detail: dict[str, Any] = {"user": user, "change": change}
    if roles is not None:
        detail["roles"] = sorted(role.value for role in roles)
    if password is not None:
        detail["local_password"] = password
    record(ledger, actor=actor, action=DeskAction.USER_ADMIN, source=source, reason=reason,
           detail=detail)


# -- sign-in ----------------------------------------------------------------------------------
def authenticate(ledger: Ledger, settings: Settings, username: str, password: str, *,
                 source: str | None, hasher: PasswordHasher = PASSWORD_HASHER) -> User:
    """The account, when the name and password are right and it is active and not locked;
    otherwise `SignInRefused` (`AccountLocked` while locked). Audited either way.

    Every refusal runs the same steps: admit the attempt (one UPDATE, no row for an unknown
    name or a locked account), one argon2 verification, read the account's state, audit."""
    dummy = _dummy_hash(_params(hasher))  # made on the first call, whoever it is for
    try:
        name = normalise_username(username)
    except AccountError:
        name = ""  # no account has it: the same steps as any unknown name
    now = ledger.now()
    until = iso(moment(now) + timedelta(minutes=settings.web_lockout_minutes))
    with ledger.begin() as conn:
        admitted = conn.execute(clause("desk_user_signin_attempt"), {
            "username": name, "max_failures": settings.web_max_failed_signins, "until": until,
            "now": now}).mappings().first()
    stored: str | None = admitted["password_hash"] if admitted is not None else None
    matches = _verify(hasher, stored or dummy, password) and stored is not None
    own_lock = until if admitted is not None and admitted["locked_until"] == until else None
    if (stored is not None and matches and admitted is not None and admitted["active"]
            and ledger.execute("desk_user_signed_in", username=name, at=now,
                               own_lock=own_lock) == 1):
        if hasher.check_needs_rehash(stored):
            ledger.execute("desk_user_rehash", username=name, password_hash=hasher.hash(password),
                           old_hash=stored)
        record(ledger, actor=name, action=DeskAction.SIGN_IN, source=source,
               detail={"method": "password"})
        return _current(ledger, name)
    row = ledger.fetch_one("desk_user_get", username=name)  # the state after this attempt
    locked = row["locked_until"] if row is not None else None
    if row is None:
        why = "unknown_user"
    elif admitted is None or (matches and admitted["active"]):
        why = "locked"  # refused before the check, or locked by others while it ran
    elif not admitted["active"]:
        why = "disabled"
    else:
        why = "password" if stored is not None else "no_password"
    _failed(ledger, settings, name if row is not None else None, username, source, why,
            locked_until=own_lock)
    if locked and locked > now and why in ("locked", "password"):
        raise AccountLocked(locked)
    raise SignInRefused()


def oidc_user(ledger: Ledger, username: str, display_name: str, roles: Iterable[str], *,
              issuer: str, subject: str, source: str | None) -> User:
    """The account of the person the identity provider signed in, known by (`issuer`,
    `subject`: the ID token's `iss` and `sub`). Their first sign-in creates it under `username`
    (the token's preferred_username), or binds an account an administrator made for the
    provider under that name; a name that is a local account's or another person's is refused
    (`OidcNameTaken`), so no one takes over an account by choosing its name. Roles follow the
    token each time (names that are no desk role are ignored); a disabled account stays refused.
    Audits the sign-in (and a change of roles)."""
    issuer, subject = issuer.strip(), subject.strip()
    if not issuer or not subject:
        raise SignInRefused("the identity provider did not say who you are (no issuer or subject)")
    granted = frozenset(Role(r) for r in roles if r in _ROLE_NAMES)
    display = (display_name.strip() or username.strip())[:120]
    row = ledger.fetch_one("desk_user_by_subject", issuer=issuer, subject=subject)
    if row is None:
        name, created = _claim_name(ledger, normalise_username(username), display, issuer,
                                    subject, source)
    else:  # the name it was first given, whatever the token shows now
        name, created = str(row["username"]), False
    user = _current(ledger, name)
    if not user.active:
        record(ledger, actor=name, action=DeskAction.SIGN_IN_FAILED, source=source,
               detail={"method": "oidc", "why": "disabled"})
        raise SignInRefused("this account is disabled on the support desk; ask an administrator")
    if created or user.roles != granted:
        _replace_roles(ledger, name, granted)
        _admin_audit(ledger, "oidc", source, name, "created" if created else "roles",
                     roles=granted)
    ledger.execute("desk_user_oidc_signed_in", issuer=issuer, subject=subject,
                   display_name=display, at=ledger.now())
    record(ledger, actor=name, action=DeskAction.SIGN_IN, source=source, detail={"method": "oidc"})
    return _current(ledger, name)


def _claim_name(ledger: Ledger, name: str, display: str, issuer: str, subject: str,
                source: str | None) -> tuple[str, bool]:
    """A person of the identity provider new to the desk: a new account under `name` (True), or
    the unbound provider account an administrator made under it (False); else refused and
    audited."""
    params = {"username": name, "display_name": display, "issuer": issuer, "subject": subject,
              "at": ledger.now()}
    if ledger.execute("desk_user_insert_oidc", **params) == 1:
        return name, True
    if ledger.execute("desk_user_bind_oidc", **params) == 1:
        return name, False
    meanwhile = ledger.fetch_one("desk_user_by_subject", issuer=issuer, subject=subject)
    if meanwhile is not None:  # the same person's other sign-in created it a moment ago
        return str(meanwhile["username"]), False
    taken = ledger.fetch_one("desk_user_get", username=name)
    why = "local_account" if taken is not None and not taken["oidc"] else "other_person"
    record(ledger, actor=UNKNOWN_USER, action=DeskAction.SIGN_IN_FAILED, source=source,
           detail={"method": "oidc", "why": why, "user": name, "issuer": issuer,
                   "subject": subject})
    raise OidcNameTaken(name)


def _verify(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _params(hasher: PasswordHasher) -> tuple[int, int, int, int, int]:
    return (hasher.time_cost, hasher.memory_cost, hasher.parallelism, hasher.hash_len,
            hasher.salt_len)


@lru_cache(maxsize=4)
def _dummy_hash(params: tuple[int, int, int, int, int]) -> str:
    """A hash no password matches, with the hasher's own cost: verified for a name that has none."""
    time_cost, memory_cost, parallelism, hash_len, salt_len = params
    return PasswordHasher(time_cost, memory_cost, parallelism, hash_len, salt_len).hash(
        "no account has this password")


def attempted_name_digest(settings: Settings, attempted: str) -> str:
    """What the audit log keeps of a name that is no account: a keyed hash (people type their
    password into the user box), enough to see the same wrong name tried again and again."""
    key = settings.desk_secret.get_secret_value().encode()
    message = b"desk sign-in name\x00" + attempted.strip().lower().encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:16]


def _failed(ledger: Ledger, settings: Settings, name: str | None, attempted: str,
            source: str | None, why: str, *, locked_until: str | None = None) -> None:
    detail: dict[str, Any] = {"method": "password", "why": why}
    if name is None:
        detail["attempted"] = attempted_name_digest(settings, attempted)
    if locked_until is not None:
        detail["locked_until"] = locked_until
    record(ledger, actor=name or UNKNOWN_USER, action=DeskAction.SIGN_IN_FAILED, source=source,
           detail=detail)
