"""The member's PDF password policy, checked when a task or command starts, and its email hint.

A process refuses to start with a policy one GPU exhausts in less than the floor
(`EOB_PASSWORD_MIN_GPU_DAYS`, see `pipeline.render.check_policy_strength`), or with one the
email cannot explain: `templates/email/password_hints.toml` needs a hint for the policy in
every language the file has. Neither message carries member data.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.settings import Settings
from pipeline.templates import (
    DEFAULT_LANGUAGE,
    DEFAULT_TEMPLATES_DIR,
    TemplateError,
    TemplateFile,
    password_hints,
)

__all__ = ["MissingPasswordHint", "check_password_policy", "password_hint"]


class MissingPasswordHint(TemplateError):
    """The email has no wording telling members how to form the policy's password."""


def check_password_policy(settings: Settings, templates_dir: Path = DEFAULT_TEMPLATES_DIR) -> None:
    """Start-up: the configured policy exists, passes the floor, and has its hint in every
    language (UnknownPasswordPolicy, WeakPasswordPolicy, MissingPasswordHint otherwise)."""
    from pipeline.render import POLICIES, check_policy_strength  # the render room, only here

    policy = check_policy_strength(settings.password_policy, settings.password_min_gpu_days).name
    hints = password_hints(templates_dir)
    languages = {DEFAULT_LANGUAGE}
    for name in POLICIES:
        table = hints.value(name) if hints.has(name) else None
        if isinstance(table, dict):
            languages.update(table)
    missing = sorted(language for language in languages if not _has_text(hints, f"{policy}.{language}"))
    if missing:
        raise MissingPasswordHint(
            f"{hints.path}: no password hint for policy {policy!r} in language(s) "
            f"{', '.join(missing)}: add them under [{policy}] (one line per language, e.g. "
            f'{missing[0]} = "..."), saying how members form the password, without member data')


def password_hint(policy: str, language: str, templates_dir: Path = DEFAULT_TEMPLATES_DIR) -> str:
    """The email's words for how to form the password: the member's language, else English."""
    hints = password_hints(templates_dir)
    key = f"{policy}.{language}"
    return hints.string(key if _has_text(hints, key) else f"{policy}.{DEFAULT_LANGUAGE}")


def _has_text(hints: TemplateFile, key: str) -> bool:
    if not hints.has(key):
        return False
    found = hints.value(key)
    return isinstance(found, str) and bool(found.strip())
