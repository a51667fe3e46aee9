"""Compose: one statement per member and period from the canonical lines, its version chosen
by content (see `pipeline.compose.statements`)."""

from pipeline.compose.accumulators import HOLD_OVERRUN, OVERRUN_MODES
from pipeline.compose.reasons import UnknownReasonCode, explain_reason, is_adverse, line_codes
from pipeline.compose.statements import (
    ID_SCHEMES,
    KEYED_IDS,
    UNKEYED_IDS,
    Composed,
    StaleComposition,
    StatementIds,
    UnknownIdScheme,
    Version,
    compose_shard,
    iter_composed,
    make_statement_id,
    prompt_notice_claims,
    prompt_notice_columns,
    read_versions,
    write_versions,
)

__all__ = [
    "HOLD_OVERRUN", "OVERRUN_MODES", "is_adverse", "line_codes",
    "ID_SCHEMES", "KEYED_IDS", "UNKEYED_IDS", "Composed", "StaleComposition", "StatementIds",
    "UnknownIdScheme", "UnknownReasonCode", "Version", "compose_shard", "explain_reason",
    "iter_composed", "make_statement_id", "prompt_notice_claims", "prompt_notice_columns", "read_versions",
    "write_versions",
]
