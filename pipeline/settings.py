"""One typed settings object for the whole pipeline.

Every value has an embedded default that needs nothing installed (SQLite ledger, local folder
object store, SMTP pools on loopback). Production values come from `EOB_*` environment
variables, which an Airflow deployment fills from its connections and secrets backend.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EXTRACT_SUFFIXES = (".csv", ".parquet", ".ndjson", ".jsonl", ".json", ".ndjson.gz")
"""File names that are read as part of a period's extract (hidden files never are)."""


def is_extract_file(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(EXTRACT_SUFFIXES)


class PoolSettings(BaseModel):
    """One dedicated sending IP pool and the relay it talks to."""

    name: str
    source_ip: str
    relay_host: str
    relay_port: int = 2525
    max_per_second: float = 200.0
    max_connections: int = 4
    messages_per_connection: int = 100
    weight: float = 1.0


def _loopback_pools() -> list[PoolSettings]:
    return [
        PoolSettings(name="pool_a", source_ip="127.0.0.2", relay_host="127.0.0.12"),
        PoolSettings(name="pool_b", source_ip="127.0.0.3", relay_host="127.0.0.13"),
    ]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EOB_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    workspace: Path = Path("var/workspace")
    ledger_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: a SQLite file in the workspace"
    )
    object_store_url: str | None = Field(
        default=None, description="file:///path or s3://bucket/prefix; default: workspace/objects"
    )
    s3_kms_key_id: str | None = None
    s3_endpoint_url: str | None = None
    shards: int = Field(default=2, ge=1, le=1024)

    pools: list[PoolSettings] = Field(
        default_factory=_loopback_pools,
        description="the IP pools when no pool file is set; read them through "
        "`pipeline.delivery.pools.send_config`, the one pool model, never directly",
    )
    smtp_ca_file: Path | None = Field(
        default=None, description="CA bundle that verifies the relays; default: system store"
    )
    smtp_timeout_seconds: float = 30.0
    smtp_ehlo_hostname: str = "mailer.eob.example"
    mail_from_address: str = "statements@eob.example"
    mail_from_name: str = "Member Statements"
    bounce_domain: str = "bounces.eob.example"
    message_id_domain: str = "eob.example"
    verp_secret: SecretStr = SecretStr("change-me-verp-secret")
    pdf_owner_password: SecretStr = SecretStr("change-me-owner-password")
    bounce_maildir: Path | None = None

    prompt_notice_days: int = 30
    email_cost_cents: float = 0.2
    paper_cost_cents: float = 68.0
    retry_max_attempts: int = 3
    retry_base_delay_seconds: int = 900

    # -- ingest and compose settings --
    extracts_url: str | None = Field(
        default=None,
        description="where each period's extract folder lives: a local folder or s3://bucket/prefix "
        "(the period's files are under <url>/YYYY-MM/); default: workspace/extracts",
    )
    extract_format: str = Field(
        default="auto", pattern=r"^(auto|canonical|fhir|synthea)$",
        description="auto-detects canonical CSV/Parquet, FHIR ExplanationOfBenefit or Synthea CSV",
    )
    extract_quiet_minutes: int = Field(
        default=10, ge=0,
        description="the DAG's sensor starts ingest only once no extract file has changed for this "
        "many minutes, so a file still being written is not read; 0: as soon as files are there",
    )
    extract_ready_marker: str | None = Field(
        default=None, pattern=r"^[^/\\]+$",
        description="a file the insurer writes into the period folder once the extract is complete "
        "(e.g. _SUCCESS); when set, the sensor also waits for it",
    )

    @field_validator("extract_ready_marker")
    @classmethod
    def _marker_is_not_an_extract_file(cls, value: str | None) -> str | None:
        if value is not None and is_extract_file(value):
            raise ValueError(f"{value!r} would be read as part of the extract: name the marker file "
                             "without .csv/.parquet/.json/.ndjson/.jsonl (e.g. _SUCCESS)")
        return value
    compose_withdraw_limit: float = Field(
        default=0.1, ge=0, le=1,
        description="the largest share of a period's statements a corrected extract may withdraw "
        "(members left with no claim lines); compose refuses more, as a partial delivery looks "
        "the same (up to 10 are always allowed)",
    )
    ingest_bucket_rows: int = Field(
        default=250_000, ge=1_000,
        description="claim lines per bucket in the second ingest pass: bounds ingest/compose memory",
    )

    # -- render settings --
    render_batch_size: int = Field(
        default=200, ge=1, description="rendered statements per ledger transaction (render stage)"
    )

    # -- PDF password settings --
    # The member's password opens the emailed statement; an attacker holding the file may try
    # every password of the policy offline (guess spaces and exhaust times: `eob passwords`).
    # Every task and command checks, as it opens its context, that the policy passes the floor
    # and that the email has its hint in every language (pipeline/stages/passwords.py).
    password_policy: str = Field(
        default="member_id_dob",
        description="how the member's PDF password is formed: member_id_dob (member ID from "
        "the card + date of birth MMDDYYYY), last4_member_zip or dob_mmddyyyy; the email's hint "
        "comes from templates/email/password_hints.toml",
    )
    password_min_gpu_days: float = Field(
        default=1.0, ge=0,
        description="the floor: a policy whose every password one GPU tries in fewer days is "
        "refused at start-up; lower it only for a demo or a test that uses a weak policy on purpose",
    )

    # -- send settings --
    pools_file: Path | None = Field(
        default=None,
        description="IP pool configuration (TOML; see infra/pools.toml): source IPs, relays, "
        "provider limits, warm-up plans; default: the pools of EOB_POOLS",
    )
    send_max_seconds: float = Field(
        default=3300.0, gt=0,
        description="time budget of one send task; what is left stays queued for the next run",
    )
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_key_file: Path | None = Field(default=None, description="PEM private key; unset: no DKIM")

    # -- reconcile settings --
    reconcile_feeds: list[str] = Field(
        default_factory=list,
        description="bounce/outcome feeds as URLs (maildir:///p, imaps://user@host/Folder, "
        "imap://… (STARTTLS required), s3://bucket/prefix (raw messages), "
        "ses+sqs://<queue-url>, ses+s3://bucket/prefix (SES JSON)); default: the bounce Maildir",
    )
    reconcile_imap_password: SecretStr | None = None
    reconcile_imap_ca_file: Path | None = None
    reconcile_aws_region: str = "us-east-1"
    reconcile_aws_endpoint_url: str | None = None
    reconcile_batch_size: int = Field(default=1000, ge=1, description="messages per feed per run")
    delivery_deadline_hours: float = Field(
        default=21 * 24, gt=0, description="from run start: every statement delivered or on paper"
    )
    bounce_quiet_hours: float = Field(
        default=5 * 24, gt=0, description="relay-accepted with no bounce this long: delivered"
    )
    verification_days: float = Field(default=7.0, gt=0)
    retry_max_delay_seconds: int = 6 * 3600
    retry_requeue_per_pool: int = Field(default=500, ge=1, description="retries requeued per pool per cycle")
    pool_hold_threshold: int = Field(default=5, ge=1)
    pool_hold_window_minutes: int = Field(default=60, ge=1)
    pool_hold_minutes: int = Field(default=60, ge=1)
    sweep_batch_size: int = Field(default=5000, ge=1)

    @cached_property
    def ledger_dsn(self) -> str:
        return self.ledger_url or f"sqlite:///{(self.workspace / 'ledger.sqlite').resolve()}"

    @cached_property
    def objects_url(self) -> str:
        return self.object_store_url or (self.workspace / "objects").resolve().as_uri()

    @property
    def maildir(self) -> Path:
        return self.bounce_maildir or self.workspace / "bounces"

    @property
    def extracts_dir(self) -> Path:
        return self.workspace / "extracts"

    @property
    def work_dir(self) -> Path:
        return self.workspace / "work"

    @property
    def reports_dir(self) -> Path:
        return self.workspace / "reports"
