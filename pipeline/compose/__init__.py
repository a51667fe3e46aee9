"""Compose: one statement per member and period from the canonical lines, its version chosen
by content (see `pipeline.compose.statements`)."""

from pipeline.compose.statements import (
    Composed,
    StaleComposition,
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
    "Composed", "StaleComposition", "UnknownReasonCode", "Version", "compose_shard", "explain_reason",
    "iter_composed", "make_statement_id", "prompt_notice_claims", "read_versions", "write_versions",
]
