"""One typed settings object for the whole pipeline.

Every value has an embedded default that needs nothing installed (SQLite ledger, local folder
object store, SMTP pools on loopback). Production values come from `EOB_*` environment
variables, which an Airflow deployment fills from its connections and secrets backend.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    pools: list[PoolSettings] = Field(default_factory=_loopback_pools)
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
    password_policy: str = Field(
        default="dob_mmddyyyy", description="dob_mmddyyyy or last4_member_zip"
    )
    bounce_maildir: Path | None = None

    prompt_notice_days: int = 30
    email_cost_cents: float = 0.2
    paper_cost_cents: float = 68.0
    retry_max_attempts: int = 3
    retry_base_delay_seconds: int = 900

    # -- ingest and compose settings --

    # -- render settings --

    # -- send settings --

    # -- reconcile settings --

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

    def pool(self, name: str) -> PoolSettings:
        for pool in self.pools:
            if pool.name == name:
                return pool
        raise KeyError(f"no IP pool named {name!r} in settings (known: {self.pool_names})")

    @property
    def pool_names(self) -> list[str]:
        return [pool.name for pool in self.pools]
