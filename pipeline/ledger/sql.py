"""SQL lives in `sql/` as plain files; this module loads it by name.

Queries are named blocks (`-- name: foo`). `REQUIRED_QUERIES` lists every name the code runs;
opening the ledger checks them all (`check_queries`), so a missing one fails at start-up, not
in the middle of a run, and a test keeps the list equal to the names used in the code.
Migrations are numbered files applied in order; a migration may have a dialect-specific
variant (`NNN_name.postgresql.sql`) where portable SQL cannot say it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from sqlalchemy import TextClause, text

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{3})_(\w+?)(?:\.(sqlite|postgresql))?\.sql$")


class SqlFileError(LookupError):
    """The sql/ folder is missing a query or holds a malformed migration."""


@cache
def queries(sql_dir: Path = SQL_DIR) -> dict[str, str]:
    """All named queries of sql/queries/*.sql."""
    found: dict[str, str] = {}
    for path in sorted((sql_dir / "queries").glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        parts = _NAME.split(text)
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in found:
                raise SqlFileError(f"query {name!r} is defined twice (second time in {path.name})")
            found[name] = body.strip().rstrip(";")
    return found


REQUIRED_QUERIES: frozenset[str] = frozenset({
    "active_suppression", "applied_migrations", "apply_transition", "audit_chain",
    "bounce_categories_for_run", "bounce_message_outcomes", "bounce_message_seen",
    "channel_counts_for_run", "compose_active_suppressions", "compose_insert_prompt_notice",
    "compose_latest_versions", "compose_noticed_claims", "compose_set_address_hash",
    "compose_set_lineage",
    "create_schema_migrations",
    "current_status", "delete_ingest_files", "delete_quarantine", "event_counts_for_run",
    "flagged_after_release", "get_run", "get_statement", "ingest_begin", "ingest_failed",
    "ingest_files_for_run", "ingest_prompt_notices_for_run", "ingest_reissues_for_run",
    "ingest_state_for_run", "ingest_succeeded", "insert_audit",
    "insert_bounce_message", "insert_event", "insert_ingest_file", "insert_quarantine",
    "insert_run", "insert_statement", "finish_run", "last_audit_hash", "latest_run",
    "lock_migrations_postgresql", "move_from_expected_postgresql", "pool_active_pauses", "pool_add_usage",
    "pool_all_active_pauses", "pool_clear_throttle", "pool_counts_for_run", "pool_insert_pause",
    "pool_lift_pauses", "pool_save_throttle", "pool_sending_days_before", "pool_throttle_state",
    "own_statements_for_run", "accumulator_overrun_flags", "held_statements_for_run",
    "pool_usage_today", "prompt_notice_count_for_run", "quarantine_reasons_for_run",
    "reconcile_bounces_since", "reconcile_due_retries", "reconcile_last_event",
    "reconcile_queue_counts", "reconcile_verified", "record_migration", "render_content_hashes",
    "render_replace_object", "rendered_for_run", "send_in_doubt_for_pool",
    "send_queued_counts_for_pool", "send_queued_for_pool", "send_statement_now",
    "send_statements_by_id",
    "set_statement_delivery",
    "statement_flagged_after_release", "statement_id_scheme_for_run", "statement_ids_in_shard",
    "status_counts_for_run",
    "superseded_unexplained_for_run", "suppression_for_statement", "suppression_get",
    "suppression_lift", "suppression_upsert", "sweep_candidates", "sweep_unsettled_for_run",
    "timeline", "verify_pending", "withdrawn_for_run",
    # paper
    "paper_candidates", "paper_set_print_key", "paper_batches_for_day", "paper_last_serial",
    "paper_insert_batch", "paper_insert_piece", "paper_batch", "paper_batches",
    "paper_batch_pieces", "paper_live_piece", "paper_end_piece", "paper_set_batch_state",
    "paper_overdue_batches", "paper_not_mailed_since", "paper_insert_forwarding",
    "paper_status_counts", "paper_exceptions", "paper_last_batched_address", "paper_batches_for_run",
    "paper_undelivered_batches", "paper_mark_delivered", "paper_returned_statements", "paper_open_pieces",
    "paper_serials_since", "paper_latest_serial_of", "paper_forwarding_known", "paper_forwarding_list",
    "send_lease_take", "send_lease_steal", "send_lease_renew", "send_lease_release", "send_lease_get",
    "send_run_awaiting_route", "send_queued_counts_total", "current_statuses",
    # prompt notices
    "notices_due", "notice_assign_id", "notice_current", "notice_move", "notice_set_reason",
    "notice_attempt", "notice_paper_candidates", "notices_in_shard",
    "notices_open_of_superseded",
}) | frozenset({
    # support desk: lookup, search, actions (pipeline/desk)
    "desk_statement", "desk_search_statement", "desk_search_member", "desk_search_claim",
    "desk_search_email", "desk_insert_change", "desk_change", "desk_pending_changes",
    "desk_decide_change", "desk_pending_changes_of_statements", "desk_pending_change_of_statement",
    "desk_move_statement",
    "compose_statements_without_claims", "compose_insert_statement_claims",
}) | frozenset({
    # support desk: users, sign-in, audit (pipeline/desk, pipeline/ledger/audit.py)
    "audit_lock_postgresql", "audit_seq_by_hash", "audit_hash_of_seq", "audit_seqs_by_prev_hash",
    "audit_seq_after", "audit_entries", "audit_between", "audit_statement_members", "audit_contacts_between",
    "desk_user_get", "desk_user_by_subject", "desk_users_list", "desk_user_roles",
    "desk_all_user_roles", "desk_user_insert", "desk_user_insert_oidc", "desk_user_bind_oidc",
    "desk_user_oidc_signed_in", "desk_user_roles_clear", "desk_user_role_add",
    "desk_user_set_password", "desk_user_rehash", "desk_user_set_active", "desk_user_unlock",
    "desk_user_signin_attempt", "desk_user_signed_in", "desk_contact_insert", "desk_contact_windows",
}) | frozenset({
    # support desk: web sessions (pipeline/web)
    "web_session_insert", "web_session_get", "web_session_touch", "web_session_end",
    "web_session_flash", "web_sessions_purge", "web_sessions_end_for_user",
}) | frozenset({
    # finance facts and figures (pipeline/report/facts.py, figures.py)
    "facts_delete_rates", "facts_insert_rate", "facts_delete_providers", "facts_insert_provider",
    "facts_delete_state", "facts_delete_email", "facts_delete_queues", "facts_delete_paper",
    "facts_delete_cost", "facts_delete_deadline", "facts_insert_calendar", "facts_mark_day",
    "facts_insert_state",
    "facts_insert_email_sqlite", "facts_insert_email_postgresql", "facts_insert_queues",
    "facts_insert_paper", "facts_insert_email_cost", "facts_insert_paper_cost", "facts_runs_started",
    "facts_insert_deadline", "facts_rows_for_day", "facts_run_span", "facts_first_day_of_active_runs",
    "figures_runs_in_scope",
    "figures_state", "figures_email", "figures_queues", "figures_paper", "figures_cost",
    "figures_deadline", "figures_last_built_day", "figures_ledger_statements", "figures_moves_since",
})
"""Every query name the code runs (kept equal to the names in the code by a test)."""


def check_queries(required: frozenset[str] = REQUIRED_QUERIES, sql_dir: Path = SQL_DIR) -> None:
    """Fail fast, naming them, if any query the code runs is missing from sql/queries."""
    missing = sorted(required - set(queries(sql_dir)))
    if missing:
        raise SqlFileError(f"sql/queries/*.sql lacks the queries {missing}: the ledger cannot start "
                           "(is the sql/ folder from the same version as the code?)")


def query(name: str) -> str:
    try:
        return queries()[name]
    except KeyError:
        raise SqlFileError(f"no query named {name!r} in sql/queries/*.sql") from None


@cache
def clause(name: str) -> TextClause:
    """The named query as a SQLAlchemy clause, parsed once per process: the send path runs a
    few queries per message, and parsing the text again each time costs more than the query."""
    return text(query(name))


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def migrations(dialect: str, sql_dir: Path = SQL_DIR) -> list[Migration]:
    """The ordered migrations for one dialect ('sqlite' or 'postgresql')."""
    chosen: dict[int, tuple[str, Path, bool]] = {}
    for path in sorted((sql_dir / "migrations").glob("*.sql")):
        match = _MIGRATION.match(path.name)
        if not match:
            raise SqlFileError(f"migration file {path.name} is not named NNN_name[.dialect].sql")
        version, name, for_dialect = int(match[1]), match[2], match[3]
        if for_dialect and for_dialect != dialect:
            continue
        current = chosen.get(version)
        if current and current[2] == bool(for_dialect):
            raise SqlFileError(f"two migrations numbered {version:03d} for {dialect}")
        if current is None or for_dialect:
            chosen[version] = (name, path, bool(for_dialect))
    versions = sorted(chosen)
    if versions != list(range(1, len(versions) + 1)):
        raise SqlFileError(f"migrations for {dialect} are not numbered 001..N without gaps")
    return [
        Migration(v, chosen[v][0], tuple(split_statements(chosen[v][1].read_text("utf-8"))))
        for v in versions
    ]


def split_statements(script: str) -> list[str]:
    """Split a migration into statements (our migrations never put ';' inside literals)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]
