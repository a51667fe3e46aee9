"""`eob users …`: the support desk's accounts — add, list, roles, password, disable, enable,
unlock. The way to make the first administrator, and to recover when none can sign in.

Every change is an audit entry naming who made it (`--actor`, default this login), the machine
it ran on and, with `--reason`, why. No one changes their own roles or disables their own account:
another administrator does. Passwords are read from a hidden prompt or from standard input
(`--password-stdin`, for scripts), never from the command line, where `ps` and shell history
would keep them.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipeline.cli.audit import command_source, default_actor, open_ledger

app = typer.Typer(help="Support desk accounts: add, list, roles, password, disable, enable, unlock.",
                  no_args_is_help=True, add_completion=False)
console = Console()

Name = Annotated[str, typer.Argument(help="User name (letters, digits and . _ @ + -)")]
Actor = Annotated[str | None, typer.Option(
    help="Who makes the change (recorded in the audit log); default: this login")]
Roles = Annotated[list[str], typer.Option(
    "--role", help="A role: support_agent, supervisor, finance, auditor or admin (repeat for more)")]
PasswordStdin = Annotated[bool, typer.Option(
    "--password-stdin", help="Read the password from standard input instead of a prompt")]
Reason = Annotated[str | None, typer.Option(
    help="Why (recorded in the audit log; a few words, no member details), e.g. a ticket's "
         "subject")]


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _fail(exc: Exception) -> None:
    console.print(f"[red]{exc}[/red]", soft_wrap=True)
    raise typer.Exit(1)


def _describe(user) -> str:  # type: ignore[no-untyped-def]
    roles = ", ".join(sorted(user.roles)) or "no role"
    state = "active" if user.active else "disabled"
    locked = f", locked until {user.locked_until[:16]} UTC" if user.locked_until else ""
    return f"{user.username} ({user.display_name}): {roles}; {state}{locked}"


@app.command("add")
def add(
    name: Name,
    role: Roles,
    display_name: Annotated[str | None, typer.Option(help="Name shown on the desk")] = None,
    password_stdin: PasswordStdin = False,
    no_password: Annotated[bool, typer.Option(
        "--no-password", help="No local password: the user signs in through the identity "
        "provider (OIDC) only: their first company sign-in under this name binds them to it")
    ] = False,
    actor: Actor = None,
    reason: Reason = None,
) -> None:
    """Add a user with one or more roles and a local password (asked for, at least 12
    characters)."""
    from pipeline.desk.accounts import create_user
    from pipeline.desk.errors import DeskError

    _settings, ledger = open_ledger()
    password = None if no_password else _password(password_stdin)
    try:
        user = create_user(ledger, name, display_name or name, role, password,
                           actor=actor or default_actor(), source=command_source(), reason=reason)
    except DeskError as exc:
        _fail(exc)
        return
    console.print(f"added {_describe(user)}", soft_wrap=True, markup=False)


@app.command("list")
def list_all() -> None:
    """Every account: roles, whether it is active or locked, and its last sign-in."""
    from pipeline.desk.accounts import list_users

    _settings, ledger = open_ledger()
    table = Table("user", "name", "roles", "state", "sign-in", "last sign-in")
    for user in list_users(ledger):
        state = "active" if user.active else "disabled"
        if user.locked_until:
            state += f", locked until {user.locked_until[11:16]} UTC"
        table.add_row(user.username, user.display_name, ", ".join(sorted(user.roles)) or "-", state,
                      "identity provider" if user.oidc else "password",
                      (user.last_signin_at or "never")[:16])
    console.print(table)


@app.command("roles")
def roles(name: Name, role: Roles, actor: Actor = None, reason: Reason = None) -> None:
    """Replace a user's roles with the ones given (another administrator's: not your own)."""
    from pipeline.desk.accounts import set_roles
    from pipeline.desk.errors import DeskError

    _settings, ledger = open_ledger()
    try:
        user = set_roles(ledger, name, role, actor=actor or default_actor(), source=command_source(),
                         reason=reason)
    except DeskError as exc:
        _fail(exc)
        return
    ended = _sign_out(ledger, user.username)
    console.print(f"roles set: {_describe(user)}{ended}", soft_wrap=True, markup=False)


@app.command("password")
def password(name: Name, password_stdin: PasswordStdin = False, actor: Actor = None,
             reason: Reason = None) -> None:
    """Set a new local password (this also ends a lockout)."""
    from pipeline.desk.accounts import normalise_username, set_password
    from pipeline.desk.errors import DeskError

    _settings, ledger = open_ledger()
    try:
        set_password(ledger, name, _password(password_stdin), actor=actor or default_actor(),
                     source=command_source(), reason=reason)
    except DeskError as exc:
        _fail(exc)
        return
    ended = _sign_out(ledger, normalise_username(name))
    console.print(f"password set for {name}{ended}", soft_wrap=True, markup=False)


def _set_active(name: str, active: bool, actor: str | None, reason: str | None) -> None:
    from pipeline.desk.accounts import set_active
    from pipeline.desk.errors import DeskError

    _settings, ledger = open_ledger()
    try:
        user = set_active(ledger, name, active, actor=actor or default_actor(),
                          source=command_source(), reason=reason)
    except DeskError as exc:
        _fail(exc)
        return
    ended = "" if active else _sign_out(ledger, user.username)
    console.print(f"{'enabled' if active else 'disabled'}: {_describe(user)}{ended}", soft_wrap=True,
                  markup=False)


def _sign_out(ledger, username: str) -> str:  # type: ignore[no-untyped-def]
    """End the user's desk sessions: a changed password, role or account takes effect at once."""
    from pipeline.web.sessions import end_sessions_of

    ended = end_sessions_of(ledger, username)
    return f" ({ended} desk session{'s' if ended != 1 else ''} ended)" if ended else ""


@app.command("disable")
def disable(name: Name, actor: Actor = None, reason: Reason = None) -> None:
    """Disable an account: it can no longer sign in (accounts are never deleted, so the audit
    log's names keep meaning someone)."""
    _set_active(name, False, actor, reason)


@app.command("enable")
def enable(name: Name, actor: Actor = None, reason: Reason = None) -> None:
    """Enable a disabled account again."""
    _set_active(name, True, actor, reason)


@app.command("unlock")
def unlock(name: Name, actor: Actor = None, reason: Reason = None) -> None:
    """End a lockout after too many failed sign-ins."""
    from pipeline.desk.accounts import unlock as unlock_user
    from pipeline.desk.errors import DeskError

    _settings, ledger = open_ledger()
    try:
        user = unlock_user(ledger, name, actor=actor or default_actor(), source=command_source(),
                           reason=reason)
    except DeskError as exc:
        _fail(exc)
        return
    console.print(f"unlocked: {_describe(user)}", soft_wrap=True, markup=False)
