"""`eob lookup`: the desk's statement page in a terminal, from the same `statement_view`.

A search by member id, claim number or email address is audited as a search (the term as its
keyed hash, never the term), and each statement shown as a lookup; the email address is never
printed, and what is printed is what the desk's page shows: masked ids, status, dates, labels.
Like the desk's search page, a search serves a member contact: it takes the contact's reference
(the call or ticket id) and purpose, and opens a contact with every member it finds, so the
access review sees the look as answering a caller. The actor is the login running the command
and the source this machine, as for every other `eob` command that writes the audit log.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from pipeline.desk.lookup import StatementView

_WHEN = "%Y-%m-%d %H:%M UTC"


def run_lookup(console: Console, *, statement_id: str | None, member: str | None, claim: str | None,
               email: str | None, actor: str | None = None, reference: str | None = None,
               purpose: str | None = None) -> int:
    """Print the statements the one key given names; the exit status (0 found, 1 none, 2 usage).
    A search by member, claim or email needs `reference` and `purpose` (a contact is opened)."""
    from pipeline.cli.audit import command_source, default_actor
    from pipeline.desk.audit import DeskAction, record
    from pipeline.desk.contacts import open_contact
    from pipeline.desk.errors import DeskError
    from pipeline.desk.lookup import statement_view
    from pipeline.desk.reasons import checked_reason
    from pipeline.desk.search import SearchKey, SearchRefused, search, term_digest
    from pipeline.recipients import subscriber_id
    from pipeline.stages import open_context

    given = [(key, term) for key, term in ((SearchKey.STATEMENT, statement_id), (SearchKey.MEMBER, member),
                                           (SearchKey.CLAIM, claim), (SearchKey.EMAIL, email)) if term]
    if len(given) != 1:
        console.print("give one of: a statement id, --member, --claim or --email")
        return 2
    key, term = given[0]
    reference, purpose = (reference or "").strip(), (purpose or "").strip()
    if (key is not SearchKey.STATEMENT or reference or purpose) and not (reference and purpose):
        console.print("a search opens a contact with the member it finds: give --reference (the call or "
                      "ticket id) and --purpose (why the member got in touch)")
        return 2
    if purpose:
        try:
            purpose = checked_reason(purpose)
        except DeskError as exc:
            console.print(f"--purpose: {exc}")
            return 2
    ctx = open_context()
    who, source = (actor or "").strip() or default_actor(), command_source()
    view = statement_view(ctx, term) if key is SearchKey.STATEMENT else None
    if view is not None:
        ids, members = [view.statement_id], [view.member_id]
    else:
        try:
            hits = search(ctx, key, term)
        except SearchRefused as exc:
            console.print(str(exc))
            return 2
        ids, members = [hit.statement_id for hit in hits], [hit.member_id for hit in hits]
        record(ctx.ledger, actor=who, action=DeskAction.SEARCH, source=source,
               detail={"key": key.value, "term_hash": term_digest(ctx, key, term), "found": len(ids)})
    if reference:
        try:
            for member_id in dict.fromkeys(subscriber_id(m) for m in members):
                open_contact(ctx.ledger, ctx.settings, actor=who, member_id=member_id, reference=reference,
                             purpose=purpose, source=source)
        except DeskError as exc:
            console.print(str(exc))
            return 2
    if not ids:
        console.print(f"no statement found by that {key.value}")
        return 1
    for sid in ids:
        view = view if view is not None and view.statement_id == sid else statement_view(ctx, sid)
        if view is None:
            continue  # gone between the search and now (never: statements are not deleted)
        record(ctx.ledger, actor=who, action=DeskAction.LOOKUP, source=source, statement_id=sid,
               detail={"by": key.value})
        print_view(console, view)
    return 0


def print_view(console: Console, view: StatementView) -> None:
    """The statement's summary, then its whole timeline (nothing cut short)."""
    console.print(f"[bold]{view.statement_id} · {view.period} · version {view.version} · "
                  f"status {view.status} ({view.status_label}) · {view.channel}[/]", soft_wrap=True)
    lines = [f"recipient: {view.recipient}, member {view.member_masked}"]
    facts = [f"email: {view.email_masked}" if view.email_masked else None,
             f"pool: {view.pool}" if view.pool else None, f"attempts: {view.attempts}",
             f"email block on the address: {'yes' if view.suppressed else 'no'}"]
    lines.append(" · ".join(fact for fact in facts if fact))
    if view.next_action:
        when = f" — by {view.next_action_at.strftime(_WHEN)}" if view.next_action_at else ""
        lines.append(f"queue: {view.queue or 'none'} · next: {view.next_action}{when}")
    if view.delivery_deadline:
        lines.append(f"delivery deadline: {view.delivery_deadline.strftime(_WHEN)}")
    change = view.pending_change
    if change is not None:
        lines.append(f"address change waiting for a supervisor: {change.email_masked}, confirmed via "
                     f"{change.verified_via}, entered by {change.requested_by} at {change.requested_at[:16]}")
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False, markup=False)
    table = Table(show_lines=False)
    for column in ("at", "what happened", "status", "details"):
        table.add_column(column, overflow="fold")
    for entry in view.entries:
        table.add_row(entry.at[:19].replace("T", " "), entry.label, entry.status or "",
                      "; ".join(f"{name}: {value}" for name, value in entry.details))
    console.print(table)
