"""What a statement says: template lookups, the placeholders every string may use, formats.

Placeholder values that are the same for every statement of a brand and language (identity,
appeal addresses, period names) are computed once; member data is never cached.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from functools import lru_cache
from typing import Any

from pipeline.model import Statement
from pipeline.periods import parse_period
from pipeline.recipients import mask_member_id as mask_member_id  # one masking rule, the desk's too
from pipeline.templates import TemplateFile, period_label


def format_money(cents: int) -> str:
    """Integer cents as "$1,234.56" (negative as "-$1,234.56"); no floats involved."""
    dollars, rest = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}${dollars:,}.{rest:02d}"


_DATE_PARTS = {"%d": "{0.day:02d}", "%-d": "{0.day}", "%m": "{0.month:02d}", "%Y": "{0.year:04d}"}
ENGLISH_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
                  "September", "October", "November", "December")


@lru_cache(maxsize=32)
def date_formatter(pattern: str, months: tuple[str, ...] = ENGLISH_MONTHS
                   ) -> Callable[[date], str]:
    """A fast formatter for a template's date pattern.

    Patterns of %d, %-d (day without a leading zero), %m, %Y and %B (the month's name from
    `months`: the language file's `meta.months`) become a str.format template, about ten times
    cheaper than strftime; anything else falls back to strftime. Statements spell the month
    out (`dates`): "December 7, 2026", "7 de diciembre de 2026", never 12/07 or 07/12.
    """
    rest = pattern
    for code in ("%-d", *_DATE_PARTS, "%B"):
        rest = rest.replace(code, "")
    if "%" in rest or "{" in rest or "}" in rest:
        return lambda day: day.strftime(pattern)
    template = pattern.replace("%-d", _DATE_PARTS["%-d"])
    for code, field_format in _DATE_PARTS.items():
        template = template.replace(code, field_format)
    if "%B" not in template:
        return template.format
    names = ("", *months)
    template = template.replace("%B", "{1}")
    return lambda day: template.format(day, names[day.month])


@lru_cache(maxsize=64)
def dates(file: TemplateFile) -> Callable[[date], str]:
    """How a language file writes a date: `meta.date_format` with its own month names."""
    months = file.strings("meta.months")
    if len(months) != 12:
        raise file.error("meta.months", "expected 12 month names")
    pattern = file.string("meta.date_format")
    if "%m" in pattern or "%B" not in pattern:
        raise file.error("meta.date_format", "spell the month out (%B), never as a number")
    return date_formatter(pattern, months)


class Words:
    """Template lookups for one statement: shared placeholders plus per-call extras."""

    __slots__ = ("file", "brand", "context")

    def __init__(self, file: TemplateFile, brand_file: TemplateFile,
                 context: Mapping[str, Any]) -> None:
        self.file = file
        self.brand = brand_file
        self.context = context

    def __call__(self, key: str, **extra: Any) -> str:
        if extra:  # per-claim values can be PHI: rendered fresh, never memoised
            return self.file.text(key, {**self.context, **extra})
        return self.file.text(key, self.context, memo=True)

    def paragraphs(self, key: str) -> tuple[str, ...]:
        return self.file.texts(key, self.context)


def _hours(brand_file: TemplateFile, language: str) -> str:
    hours = brand_file.value("identity.hours")
    if isinstance(hours, str):
        return hours
    key = f"identity.hours.{language}" if brand_file.has(f"identity.hours.{language}") else (
        "identity.hours.en"
    )
    return brand_file.string(key)


@lru_cache(maxsize=256)
def _period_label(words: TemplateFile, period: str) -> str:
    first_day, _ = parse_period(period)  # BadPeriod names the period only
    return period_label(words, first_day.year, first_day.month)


@lru_cache(maxsize=64)
def _brand_context(words: TemplateFile, brand_file: TemplateFile,
                   language: str) -> dict[str, Any]:
    return {
        "legal_name": brand_file.string("identity.legal_name"),
        "short_name": brand_file.string("identity.short_name"),
        "plan_administrator": brand_file.string("identity.plan_administrator"),
        "phone": brand_file.string("identity.phone"),
        "tty": brand_file.string("identity.tty"),
        "hours": _hours(brand_file, language),
        "website": brand_file.string("identity.website"),
    }


def _localized(brand_file: TemplateFile, key: str, language: str) -> str:
    """A brand value in the statement's language when the brand gives one (`<key>_<language>`,
    e.g. `external_review.name_es`: the Spanish name with the English one glossed), else as is."""
    local = f"{key}_{language}"
    if brand_file.has(local):
        found = brand_file.value(local)
        return ", ".join(brand_file.strings(local)) if isinstance(found, list) else (
            brand_file.string(local))
    found = brand_file.value(key)
    return ", ".join(brand_file.strings(key)) if isinstance(found, list) else brand_file.string(key)


@lru_cache(maxsize=256)
def _appeal_context(brand_file: TemplateFile, language: str) -> dict[str, Any]:
    """Where to appeal and the external review program, in the statement's language. The plan
    type's rules (deadline, timeframes, contacts) are the legal pages' (`legal.py`)."""
    return {
        "appeal_address": _localized(brand_file, "appeals.address", language),
        "appeal_fax": brand_file.string("appeals.fax"),
        "appeal_portal": brand_file.string("appeals.portal"),
        "external_review_name": _localized(brand_file, "external_review.name", language),
        "external_review_phone": brand_file.string("external_review.phone"),
        "external_review_website": brand_file.string("external_review.website"),
    }


def statement_context(statement: Statement, words: TemplateFile, brand_file: TemplateFile,
                      language: str) -> dict[str, Any]:
    """Placeholders every string may use; appeal details only when the statement needs them."""
    context = {
        **_brand_context(words, brand_file, language),
        "plan_name": statement.plan.plan_name,
        "period": _period_label(words, statement.period),
        "statement_date": dates(words)(statement.statement_date),
        "statement_id": statement.statement_id,
        "this_document": words.string("meta.this_document"),
        "your_document": words.string("meta.your_document"),
    }
    if statement.has_adverse_determination:
        context |= _appeal_context(brand_file, language)
    return context
