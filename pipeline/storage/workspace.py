"""Where a run's working files live: one folder per run under the workspace's `work/`.

Ingest writes the canonical Parquet there; compose, render, send and verification read it. The
run id names both that folder and the ledger's run, so a period re-run resumes, never doubles.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.periods import parse_period
from pipeline.settings import Settings


def run_id_for(period: str) -> str:
    """One run per period: re-running a month resumes it instead of starting a second one."""
    parse_period(period)
    return f"eob-{period}"


def run_dir(settings: Settings, run_id: str) -> Path:
    return settings.work_dir / run_id


def member_contacts(settings: Settings, run_id: str) -> dict[str, tuple[str, str]]:
    """member_id → (email, language) for one run, read from its canonical member file."""
    import pandas as pd

    members = pd.read_parquet(run_dir(settings, run_id) / "members.parquet",
                              columns=["member_id", "email", "language"])
    return {m: (e, lang) for m, e, lang in members.itertuples(index=False)}
