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
from pipeline.templates import TemplateFile


def format_money(cents: int) -> str:
    """Integer cents as "$1,234.56" (negative as "-$1,234.56"); no floats involved."""
    dollars, rest = divmod(abs(cents), 100)
    return f"{'-' if cents < 0 else ''}${dollars:,}.{rest:02d}"


def mask_member_id(member_id: str) -> str:
    """Only the last 4 characters are shown: enough for the member to recognise, not to misuse."""
    return "\u2022" * 5 + member_id[-4:]


_DATE_PARTS = {"%d": "{0.day:02d}", "%m": "{0.month:02d}", "%Y": "{0.year:04d}"}


@lru_cache(maxsize=32)
def date_formatter(pattern: str) -> Callable[[date], str]:
    """A fast formatter for a template's date pattern.

    Patterns of %d, %m and %Y (all our languages) become a str.format template, about
    ten times cheaper than strftime; anything else falls back to strftime.
    """
    rest = pattern
    for code in _DATE_PARTS:
        rest = rest.replace(code, "")
    if "%" in rest or "{" in rest or "}" in rest:
        return lambda day: day.strftime(pattern)
    template = pattern
    for code, field_format in _DATE_PARTS.items():
        template = template.replace(code, field_format)
    return template.format


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
    months = words.strings("meta.months")
    if len(months) != 12:
        raise words.error("meta.months", "expected 12 month names")
    return words.text("meta.period", {"month": months[first_day.month - 1],
                                      "year": first_day.year})


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


@lru_cache(maxsize=256)
def _appeal_context(brand_file: TemplateFile, lob: str, state: str) -> dict[str, Any]:
    assist = (f"consumer_assistance.states.{state}"
              if brand_file.has(f"consumer_assistance.states.{state}") else "consumer_assistance")
    return {
        "appeal_days": brand_file.integer(f"appeals.deadline_days.{lob}"),
        "appeal_address": ", ".join(brand_file.strings("appeals.address")),
        "appeal_fax": brand_file.string("appeals.fax"),
        "appeal_portal": brand_file.string("appeals.portal"),
        "external_review_name": brand_file.string("external_review.name"),
        "external_review_phone": brand_file.string("external_review.phone"),
        "external_review_website": brand_file.string("external_review.website"),
        "consumer_name": brand_file.string(f"{assist}.name"),
        "consumer_phone": brand_file.string(f"{assist}.phone"),
        "consumer_website": brand_file.string(f"{assist}.website"),
    }


def statement_context(statement: Statement, words: TemplateFile, brand_file: TemplateFile,
                      language: str) -> dict[str, Any]:
    """Placeholders every string may use; appeal details only when the statement needs them."""
    context = {
        **_brand_context(words, brand_file, language),
        "plan_name": statement.plan.plan_name,
        "period": _period_label(words, statement.period),
        "statement_date": date_formatter(words.string("meta.date_format"))(
            statement.statement_date),
        "statement_id": statement.statement_id,
        "this_document": words.string("meta.this_document"),
        "your_document": words.string("meta.your_document"),
    }
    if statement.has_adverse_determination:
        context |= _appeal_context(brand_file, statement.member.line_of_business,
                                   statement.member.state.upper())
    return context
