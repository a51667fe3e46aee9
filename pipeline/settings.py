"""One typed settings object for the whole pipeline.

Every value has an embedded default that needs nothing installed (SQLite ledger, local folder
object store, SMTP pools on loopback). Production values come from `EOB_*` environment
variables, which an Airflow deployment fills from its connections and secrets backend.

Some defaults are test values: the VERP secret, the PDF owner password, the statement id key,
the `*.example` mail domains and the loopback pools. `EOB_ENVIRONMENT` is `production` unless
a demo or a test says `demo`, and in production `check_environment` (called wherever a stage
process starts) refuses every one of them, naming the setting and what to set. So an operator
who forgets the mode is refused, never left to run a month on test secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from ipaddress import ip_address
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EXTRACT_SUFFIXES = (".csv", ".parquet", ".ndjson", ".jsonl", ".json", ".ndjson.gz")
"""File names that are read as part of a period's extract (hidden files never are)."""


def is_extract_file(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(EXTRACT_SUFFIXES)


def source_address(value: str) -> str:
    """An IP address to bind connections to, normalised; a host name or a typo is refused."""
    try:
        return str(ip_address(value.strip()))
    except ValueError:
        raise ValueError(
            f"{value!r} is not an IP address: give an address of this machine to send from, or "
            "leave it out when the relay binds the pool's dedicated address") from None


class PoolSettings(BaseModel):
    """One dedicated sending IP pool and the relay it talks to."""

    name: str
    source_ip: str | None = Field(
        default=None,
        description="the address of this machine each connection is bound to; unset: not bound "
        "(the relay, e.g. Postfix or KumoMTA, binds the pool's dedicated address)",
    )
    relay_host: str
    relay_port: int = 2525
    ca_file: Path | None = Field(
        default=None, description="CA bundle that verifies this pool's relay; default: EOB_SMTP_CA_FILE"
    )
    max_per_second: float = 200.0
    max_connections: int = 4
    messages_per_connection: int = 100
    weight: float = 1.0

    @field_validator("source_ip")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        return None if value is None else source_address(value)


def _loopback_pools() -> list[PoolSettings]:
    return [
        PoolSettings(name="pool_a", source_ip="127.0.0.2", relay_host="127.0.0.12"),
        PoolSettings(name="pool_b", source_ip="127.0.0.3", relay_host="127.0.0.13"),
    ]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="EOB_", env_nested_delimiter="__", extra="ignore", frozen=True
    )

    environment: Literal["production", "demo"] = Field(
        default="production",
        description="production refuses, when a stage process starts, the shipped test secrets, "
        "the *.example mail domains and the demo's loopback pools; demo (set by `eob demo` and "
        "the tests) accepts them",
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
        default=None, description="CA bundle that verifies the relays of every pool without a "
        "ca_file of its own; default: the system store",
    )
    smtp_timeout_seconds: float = 30.0
    smtp_ehlo_hostname: str = "mailer.eob.example"
    mail_from_address: str = "statements@eob.example"
    mail_from_name: str = "Member Statements"
    bounce_domain: str = "bounces.eob.example"
    message_id_domain: str = "eob.example"
    verp_secret: SecretStr = SecretStr("change-me-verp-secret")
    pdf_owner_password: SecretStr = SecretStr("change-me-owner-password")
    statement_id_key: SecretStr = Field(
        default=SecretStr("change-me-statement-id-key"),
        description="keys the HMAC that makes statement ids, which every email carries: without "
        "it no one can tell a member ID from a statement id; never change it once a run used it",
    )
    bounce_maildir: Path | None = None

    prompt_notice_days: int = Field(
        default=30, ge=1, le=365,
        description="days from an adverse claim's receipt within which its notice must leave "
        "(ERISA post-service: 30; set a stricter state's number)")
    mail_holidays_country: str = Field(
        default="US", pattern=r"^[A-Z]{2}$",
        description="whose public holidays are not mail business days (the holidays package's "
        "ISO country code; US: the federal holidays, on their observed days)")
    sensitive_services_policy: Literal["separate", "include"] = Field(
        default="separate",
        description="a dependent's sensitive-service claim with no confidential-communications "
        "request: separate (the patient's own statement, by paper, in their name) or include (on "
        "the subscriber's statement)")
    accumulator_overrun: Literal["show", "hold"] = Field(
        default="show",
        description="a statement whose year-to-date accumulator is above its limit (a data "
        "problem for the claims system, always counted in the compose stage's summary): show (the "
        "true figures with a note that we are checking them) or hold (not rendered nor sent: "
        "recorded as failed with the reason StatementHeld accumulator_overrun)")
    notice_processing_hours: float = Field(
        default=6.0, ge=0, le=168,
        description="from compose to a statement being ready to leave (render, route): the notice "
        "deadline check counts from then")

    @field_validator("mail_holidays_country")
    @classmethod
    def _a_country_with_a_holiday_calendar(cls, value: str) -> str:
        if value == "US":  # the shipped calendar: no need to load the package's list (0.1 s) per task
            return value
        import holidays

        if value not in holidays.list_supported_countries():
            raise ValueError(f"{value!r} has no public-holiday calendar in the holidays package: use an "
                             "ISO 3166 country code it supports (US, GB, CA, ...)")
        return value
    report_bounce_review_rate: float = Field(
        default=0.05, gt=0, le=1, description="a pool's or provider's bounce rate at or above it is alerted")
    report_complaint_review_rate: float = Field(
        default=0.001, gt=0, le=1,
        description="a pool's or provider's complaint rate at or above it is alerted")
    report_deadline_warn_days: int = Field(
        default=3, ge=1, description="the finance report counts statements this close to their deadline")
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
    ingest_damage_limit: int = Field(
        default=100, ge=0,
        description="damaged rows (bytes that are not UTF-8, NUL bytes, overlong values) a claims "
        "file may have: they are quarantined with their row numbers; more refuse the file",
    )
    ingest_max_field_bytes: int = Field(
        default=65_536, ge=1, le=512 * 1024,
        description="the longest value a claims field may hold (bytes); a longer one quarantines "
        "its row as damage",
    )

    # -- render settings --
    render_batch_size: int = Field(
        default=200, ge=1, description="rendered statements per ledger transaction (render stage)"
    )
    font_dir: Path | None = Field(
        default=None,
        description="the folder holding the Noto font files every statement embeds "
        "(NotoSans-Regular.ttf, NotoSansCJK-Regular.ttc, NotoSansArabic-Regular.ttf, ...); "
        "default: Debian's /usr/share/fonts/truetype/noto (fonts-noto-core) and "
        "/usr/share/fonts/opentype/noto (fonts-noto-cjk); a missing file stops the process "
        "when it starts (MissingFontFile, naming the file and the package)",
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
    send_lease_seconds: float = Field(
        default=60.0, ge=5,
        description="a sender's hold on its pool's queue lapses this long after its last renewal "
                    "(a worker that died frees its pool within it)",
    )
    send_follow_idle_seconds: float = Field(
        default=900.0, gt=0,
        description="a monthly send task following the render ends when no statement of the run "
                    "has been rendered for this long (the reconcile DAG sends what comes later)",
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

    # -- paper settings (pipeline/paper, the eob_paper DAG; the vendor contract: docs/paper.md) --
    paper_drop_url: str | None = Field(
        default=None,
        description="the print vendor's drop: sftp://user@host:port/path, s3://bucket/prefix or "
        "file:///path; default: vendor-drop/ in the workspace (the demo's simulated vendor)",
    )
    paper_sftp_key_file: Path | None = Field(default=None, description="SFTP login key (PEM)")
    paper_sftp_known_hosts: Path | None = Field(
        default=None, description="known_hosts file holding the SFTP drop's host key")
    paper_s3_kms_key_id: str | None = Field(default=None, description="SSE-KMS key of an S3 drop")
    paper_mail_class: Literal["first", "standard"] = "first"
    paper_batch_max_pieces: int = Field(default=5000, ge=1, description="pieces per print batch")
    paper_batch_max_bytes: int = Field(
        default=200 * 1024 * 1024, ge=1024, description="print files read into one batch (bytes)")
    paper_duplex: bool = True
    paper_cutoff_hour: int = Field(
        default=17, ge=0, le=23,
        description="UTC hour of the day's batch: statements put on paper after it wait for the next day",
    )
    paper_production_days: int = Field(
        default=1, ge=0, le=10,
        description="business days from a batch's cut-off to the vendor's mail date (notice deadlines)")
    paper_ack_hours: float = Field(
        default=24.0, gt=0, description="a delivered batch with no acknowledgement this long is an alert")
    paper_cancel_hours: float = Field(
        default=4.0, ge=0, description="a batch may be cancelled this long after it was delivered")
    paper_mail_days: float = Field(
        default=10.0, gt=0, description="from a statement's move to paper: not mailed by then, escalated")
    paper_endorsement: str | None = Field(
        default=None, max_length=40,
        description="the endorsement line above the address (e.g. ADDRESS SERVICE REQUESTED)")
    imb_mailer_id: str | None = Field(
        default=None, description="USPS Mailer ID of the Intelligent Mail barcode (6 or 9 digits)")
    imb_barcode_id: str = "00"
    imb_service_type: str = Field(
        default="270", description="USPS Service Type ID for the mail class and services ordered")

    # -- support desk (`eob web`) --
    desk_secret: SecretStr = Field(
        default=SecretStr("change-me-desk-secret"),
        description="signs the support desk's session cookies and CSRF tokens and keys the "
        "encryption of address changes awaiting a supervisor; rotating it signs everyone out",
    )
    web_host: str = Field(default="127.0.0.1", description="address `eob web` listens on")
    web_port: int = Field(default=8740, ge=1, le=65535, description="port `eob web` listens on")
    web_tls: bool = Field(
        default=False,
        description="the desk is served over HTTPS (directly or behind a TLS proxy): sends HSTS; "
        "cookies are Secure either way",
    )
    web_idle_minutes: int = Field(
        default=15, ge=1, le=480, description="a desk session unused this long is signed out")
    web_max_failed_signins: int = Field(
        default=5, ge=1, description="failed sign-ins in a row that lock an account")
    web_lockout_minutes: int = Field(
        default=15, ge=1, description="how long a locked account stays locked")
    web_signins_per_minute: int = Field(
        default=10, ge=1, description="sign-in attempts one client address may make per minute")
    web_oidc_issuer: str | None = Field(
        default=None,
        description="OpenID Connect issuer URL (e.g. the insurer's Entra ID or Okta tenant); set "
        "with the client id and secret to sign in through it instead of local passwords",
    )
    web_oidc_client_id: str | None = None
    web_oidc_client_secret: SecretStr | None = None
    web_oidc_roles_claim: str = Field(
        default="eob_roles", description="the ID-token claim listing the user's desk roles")
    desk_contact_hours: int = Field(
        default=8, ge=1, le=72,
        description="how long a member contact opened by a search stays open: looks at a member "
        "outside an open contact are flagged on the access review (`eob audit report`)",
    )
    audit_unusual_members_per_day: int = Field(
        default=60, ge=1,
        description="members one user looks at in a day above which the access review flags it",
    )

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


# -- what production refuses -------------------------------------------------------------------

SHIPPED_TEST_SECRETS = {
    "verp_secret": "change-me-verp-secret",
    "pdf_owner_password": "change-me-owner-password",
    "statement_id_key": "change-me-statement-id-key",
    "desk_secret": "change-me-desk-secret",
}
"""The secrets every checkout of this project has: a demo's, never a deployment's."""

_RESERVED_TOP_LEVEL = ("example", "test", "invalid", "localhost")
_RESERVED_DOMAINS = ("example.com", "example.net", "example.org")


def is_reserved_domain(domain: str) -> bool:
    """A name reserved for documentation and tests (RFC 2606): mail to it never arrives."""
    name = domain.strip().lower().rstrip(".")
    return name.rpartition(".")[2] in _RESERVED_TOP_LEVEL or any(
        name == reserved or name.endswith("." + reserved) for reserved in _RESERVED_DOMAINS)


@dataclass(frozen=True, slots=True)
class Refusal:
    """One setting a production process must not start with, and what to set instead."""

    setting: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.setting} {self.problem}: {self.fix}"


_MAIL_NAMES = {
    "bounce_domain": (
        "DSNs addressed to it never come back, so no bounce would be reconciled",
        "set the domain whose MX delivers to the bounce mailbox (e.g. bounces.insurer.com)"),
    "message_id_domain": (
        "every Message-ID would name a domain that is not ours",
        "set the insurer's sending domain (e.g. insurer.com)"),
    "mail_from_address": (
        "members would see mail from an address no one owns, which DMARC cannot align",
        "set the From address on the insurer's domain (e.g. statements@insurer.com)"),
    "smtp_ehlo_hostname": (
        "relays and mailbox providers check the name a sender greets with",
        "set the sending host's name, whose forward and reverse DNS match the pool's address "
        "(e.g. mailer.insurer.com)"),
}


def production_refusals(settings: Settings) -> list[Refusal]:
    """Every shipped test value still in ``settings``, whatever the mode (``eob check`` lists
    them; ``check_environment`` refuses them in production)."""
    found: list[Refusal] = []
    for name, shipped in SHIPPED_TEST_SECRETS.items():
        secret = getattr(settings, name).get_secret_value()
        if secret == shipped or not secret.strip():
            found.append(Refusal(
                f"EOB_{name.upper()}", "is the shipped test value" if secret.strip() else "is empty",
                "set a long random value from the deployment's secrets backend (e.g. `openssl "
                "rand -hex 32`)"))
    for name, (why, fix) in _MAIL_NAMES.items():
        value = str(getattr(settings, name))
        if is_reserved_domain(value.rpartition("@")[2]):
            found.append(Refusal(f"EOB_{name.upper()}",
                                 f"is {value!r}, on a reserved example domain ({why})", fix))
    if settings.pools_file is None and "pools" not in settings.model_fields_set:
        found.append(Refusal(
            "EOB_POOLS_FILE", "is not set, nor is EOB_POOLS, so the pools would be the demo's "
            "loopback relays", "set EOB_POOLS_FILE to the pool file (see infra/pools.toml), or "
            "EOB_POOLS"))
    return found


class SettingsRefused(ValueError):
    """A production process was started with shipped test values; ``refusals`` names each."""

    def __init__(self, refusals: Sequence[Refusal]) -> None:
        self.refusals = tuple(refusals)
        super().__init__(
            "refusing to start in production mode (EOB_ENVIRONMENT=production, the default): "
            + "; ".join(str(refusal) for refusal in self.refusals)
            + ". A demo or a test may set EOB_ENVIRONMENT=demo to run on the shipped test values")


def check_environment(settings: Settings) -> None:
    """Start-up: in production, refuse the shipped test values (``SettingsRefused``)."""
    if settings.environment == "production":
        found = production_refusals(settings)
        if found:
            raise SettingsRefused(found)
