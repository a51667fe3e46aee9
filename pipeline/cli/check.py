"""`eob check`: the whole configuration validated on this machine, without sending anything.

Each check is listed as ok or FAILED, with what was found or what to fix; `eob check` exits
with 1 when any failed. Run it where the tasks run (a send worker for the pools): source
addresses and CA bundles are checked on the machine that uses them. With `--relays` it also
greets each relay as a send would (EHLO, verified STARTTLS, QUIT): no login, no MAIL. The
ledger and the object store are not opened (a stage opens them, and migrates the ledger).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import ValidationError
from pydantic_settings import SettingsError

from pipeline.settings import Settings, production_refusals


@dataclass(frozen=True, slots=True)
class Check:
    """One line of `eob check`: what was checked, whether it passed, what was found or to fix."""

    name: str
    ok: bool
    detail: str


def run_checks(*, relays: bool = False) -> list[Check]:
    """Every check, in the order a run meets them; stops after the settings if they do not load."""
    try:
        settings = Settings()
    except ValidationError as exc:
        return [Check("settings", False, _validation_errors(exc))]
    except SettingsError as exc:
        return [Check("settings", False, f"{exc}: correct the variable's JSON")]
    checks = [Check("settings", True, f"every EOB_* value is valid; EOB_ENVIRONMENT={settings.environment}")]
    checks += _test_values(settings)
    checks.append(_password_policy(settings))
    checks.append(_templates(settings))
    checks.append(_statement_resources(settings))
    checks += _pools(settings, relays=relays)
    checks.append(_dkim(settings))
    return checks


def _validation_errors(exc: ValidationError) -> str:
    """Each invalid setting by its variable name; the values are not repeated (some are secrets)."""
    found = []
    for error in exc.errors():
        head, *rest = error["loc"]
        name = f"EOB_{str(head).upper()}" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in rest)
        found.append(f"{name}: {error['msg']}")
    return "; ".join(found)


def _test_values(settings: Settings) -> list[Check]:
    refusals = production_refusals(settings)
    if settings.environment == "demo":
        accepted = ", ".join(refusal.setting for refusal in refusals) or "none in use"
        return [Check("EOB_ENVIRONMENT", True, f"demo: the shipped test values are accepted "
                                               f"({accepted}); never run a real month in this mode")]
    if not refusals:
        return [Check("test values", True, "no shipped test secret, example domain or demo pool")]
    return [Check(refusal.setting, False, f"{refusal.problem}: {refusal.fix}") for refusal in refusals]


def _password_policy(settings: Settings) -> Check:
    from pipeline.render import UnknownPasswordPolicy, WeakPasswordPolicy
    from pipeline.stages.passwords import check_password_policy
    from pipeline.templates import TemplateError

    try:
        check_password_policy(settings)
    except (UnknownPasswordPolicy, WeakPasswordPolicy, TemplateError) as exc:
        return Check("EOB_PASSWORD_POLICY", False, str(exc))
    return Check("EOB_PASSWORD_POLICY", True, f"{settings.password_policy}: passes the floor of "
                                              f"{settings.password_min_gpu_days:g} GPU day(s), "
                                              "email hint in every language")


def _templates(settings: Settings) -> Check:
    """The wording a run needs loads: statements per language, the brand, each language's email
    for a statement and for a prompt notice (rendered with the configured password hint), the
    reason-code table."""
    import jinja2

    from pipeline.delivery import render_email
    from pipeline.delivery.message import DEFAULT_TEMPLATES_DIR, NOTICE_TEMPLATES_DIR, SUPPORTED_LANGUAGES
    from pipeline.reason_codes import ReasonTableError, reason_table
    from pipeline.stages.passwords import password_hint
    from pipeline.templates import TEMPLATES_DIR, TemplateError, brand, statement_text

    try:
        languages = sorted(path.stem for path in (TEMPLATES_DIR / "statement").glob("*.toml"))
        for language in languages:
            statement_text(language)
        identity = brand("default")
        phone, name = identity.string("identity.phone"), identity.string("identity.short_name")
        for language in SUPPORTED_LANGUAGES:
            for folder in (DEFAULT_TEMPLATES_DIR, NOTICE_TEMPLATES_DIR):
                render_email(language=language, templates_dir=folder, context={
                    "support_phone": phone, "brand_name": name, "period_label": "November 2026",
                    "password_hint": password_hint(settings.password_policy, language)})
        table = reason_table()
    except (TemplateError, ReasonTableError, jinja2.TemplateError, OSError, KeyError) as exc:
        return Check("templates", False, f"{type(exc).__name__}: {exc}")
    return Check("templates", True, f"statement wording ({', '.join(languages)}), brand default, "
                                    f"statement and notice email ({', '.join(SUPPORTED_LANGUAGES)}), "
                                    f"reason codes version {table.version}")


def _statement_resources(settings: Settings) -> Check:
    """The fonts every statement embeds and the plan, state and tagline rules, as a stage checks
    them when it opens its context (`check_statement_resources`)."""
    from pipeline.render.fonts import MissingFontFile
    from pipeline.stages.context import check_statement_resources
    from pipeline.templates import TemplateError

    try:
        check_statement_resources(settings)
    except (MissingFontFile, TemplateError) as exc:
        return Check("fonts and legal rules", False, str(exc))
    where = settings.font_dir or "Debian's fonts-noto-core and fonts-noto-cjk"
    return Check("fonts and legal rules", True,
                 f"every font file in {where}; plan rules, states and taglines load and agree, "
                 "every tagline has a font for each character")


def _pools(settings: Settings, *, relays: bool) -> list[Check]:
    from pipeline.delivery import PoolConfigError, ca_file_for, probe_relay, send_config
    from pipeline.delivery.preflight import ca_bundle_source, check_ca_bundle, check_source_addresses

    try:
        config = send_config(settings)
    except PoolConfigError as exc:
        return [Check("pools", False, str(exc))]
    source = (f"pool file {settings.pools_file}" if settings.pools_file else "EOB_POOLS"
              if "pools" in settings.model_fields_set else "the demo's loopback pools: EOB_POOLS unset")
    checks = [Check("pools", True, f"{', '.join(config.pool_names)} (from {source})")]
    for pool in config.pools:
        try:
            check_source_addresses(pool)
            addresses = Check(f"pool {pool.name}: source addresses", True,
                              f"{', '.join(pool.source_ips)}: can be bound on this machine"
                              if pool.source_ips else
                              "none: connections are not bound (the relay binds the dedicated address)")
        except PoolConfigError as exc:
            addresses = Check(f"pool {pool.name}: source addresses", False, str(exc))
        ca_file, origin = ca_file_for(pool, settings), ca_bundle_source(pool, settings)
        try:
            if ca_file is not None:
                check_ca_bundle(ca_file, f"pool {pool.name}: {origin}")
            bundle = Check(f"pool {pool.name}: CA bundle", True,
                           f"{ca_file} ({origin})" if ca_file is not None else origin)
        except PoolConfigError as exc:
            bundle = Check(f"pool {pool.name}: CA bundle", False, str(exc))
        checks += [addresses, bundle]
        for relay in pool.relays if relays else ():
            name = f"pool {pool.name}: relay {relay.host}:{relay.port}"
            if not (addresses.ok and bundle.ok):
                checks.append(Check(name, False, "not tried: fix the pool's source addresses and "
                                                 "CA bundle first"))
                continue
            probe = probe_relay(pool, relay, settings)
            checks.append(Check(name, probe.ok, probe.detail))
    return checks


def _dkim(settings: Settings) -> Check:
    from pipeline.delivery import load_signer
    from pipeline.delivery.dkim import DkimError

    try:
        signer = load_signer(settings.dkim_domain, settings.dkim_selector, settings.dkim_key_file)
    except DkimError as exc:
        return Check("DKIM", False, str(exc))
    if signer is None:
        return Check("DKIM", True, "off (EOB_DKIM_DOMAIN, EOB_DKIM_SELECTOR, EOB_DKIM_KEY_FILE unset)")
    return Check("DKIM", True, f"signing as {settings.dkim_selector}._domainkey.{settings.dkim_domain}")


class Outcome(Protocol):
    """A check's result as `eob check` and `eob cluster check` print it."""

    @property
    def name(self) -> str: ...

    @property
    def ok(self) -> bool: ...

    @property
    def detail(self) -> str: ...


def print_checks(checks: Sequence[Outcome], again: str) -> None:
    """Each check ok or FAILED with what to fix; exits with 1 when any failed (``again``: the
    command to run once fixed)."""
    import typer

    for item in checks:
        mark = typer.style("ok    ", fg="green") if item.ok else typer.style("FAILED", fg="red", bold=True)
        typer.echo(f"{mark} {item.name}: {item.detail}")
    failed = sum(not item.ok for item in checks)
    if failed:
        typer.echo(f"{failed} of {len(checks)} checks failed: fix them, then run {again} again")
        raise typer.Exit(1)
    typer.echo(f"all {len(checks)} checks passed; nothing was sent")
