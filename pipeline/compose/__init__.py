"""Compose: one statement per member and period from the canonical lines, its version chosen
by content (see `pipeline.compose.statements`)."""

from pipeline.compose.statements import (
    ID_SCHEMES,
    KEYED_IDS,
    UNKEYED_IDS,
    Composed,
    StaleComposition,
    StatementIds,
    UnknownIdScheme,
    UnknownReasonCode,
    Version,
    compose_shard,
    explain_reason,
    iter_composed,
    make_statement_id,
    prompt_notice_claims,
    read_versions,
    write_versions,
)

__all__ = [
    "ID_SCHEMES", "KEYED_IDS", "UNKEYED_IDS", "Composed", "StaleComposition", "StatementIds",
    "UnknownIdScheme", "UnknownReasonCode", "Version", "compose_shard", "explain_reason",
    "iter_composed", "make_statement_id", "prompt_notice_claims", "read_versions", "write_versions",
]
