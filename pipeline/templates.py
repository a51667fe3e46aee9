"""Member-facing wording lives in TOML files under `templates/`; this module loads it once.

Compliance staff edit `templates/statement/<lang>.toml` and `templates/brands/<brand>.toml`,
not Python. Files are parsed once per process and their Jinja2 strings compiled once
(a render must not touch the disk). Strings whose only markup is `{{ name }}` placeholders
(nearly all of them) are filled by plain string joining, which is about ten times cheaper
than a Jinja2 render and gives the same text; anything else goes through Jinja2.
Errors name the file and the dotted key, never the values a string was rendered with,
because those can be PHI.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
"""The one place that knows where `templates/` is; every other module asks here."""
DEFAULT_TEMPLATES_DIR = TEMPLATES_DIR
DEFAULT_LANGUAGE = "en"
MEMO_LIMIT = 4096  # rendered strings kept per file; cleared when full

_SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_ENV = jinja2.Environment(
    undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
)


class TemplateError(ValueError):
    """A template file or key is missing or malformed; the message names file and key."""


class _Placeholders:
    """A string with only `{{ name }}` placeholders: literal parts joined with str(value),
    exactly what Jinja2 (autoescape off) prints for them."""

    __slots__ = ("parts",)

    def __init__(self, source: str) -> None:
        pieces = _PLACEHOLDER.split(source)  # literal, name, literal, name, ..., literal
        self.parts: tuple[tuple[str, str | None], ...] = tuple(
            (pieces[i], pieces[i + 1] if i + 1 < len(pieces) else None)
            for i in range(0, len(pieces), 2)
        )

    def render(self, context: Mapping[str, Any]) -> str:
        out: list[str] = []
        for literal, name in self.parts:
            out.append(literal)
            if name is not None:
                if name not in context:
                    raise _Missing(name)
                out.append(str(context[name]))
        return "".join(out)


class _Missing(LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.message = f"'{name}' is undefined"


def _only_placeholders(source: str) -> bool:
    rest = _PLACEHOLDER.sub("", source)
    return not any(marker in rest for marker in ("{{", "{%", "{#", "}}", "%}", "#}"))


class TemplateFile:
    """One parsed TOML template file with dotted-key lookup and cached Jinja2 compilation."""

    __slots__ = ("path", "_data", "_compiled", "_names", "_memo")

    def __init__(self, path: Path, data: Mapping[str, Any]) -> None:
        self.path = path
        self._data = data
        self._compiled: dict[str, jinja2.Template | _Placeholders | str] = {}
        self._names: dict[str, tuple[str, ...]] = {}  # placeholders each template uses
        self._memo: dict[tuple[Any, ...], str] = {}

    def error(self, key: str, problem: str) -> TemplateError:
        return TemplateError(f"{self.path}: key {key!r}: {problem}")

    def has(self, key: str) -> bool:
        try:
            self.value(key)
        except TemplateError:
            return False
        return True

    def value(self, key: str) -> Any:
        """The raw TOML value at a dotted key (table, list, number or string)."""
        node: Any = self._data
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise self.error(key, "missing")
            node = node[part]
        return node

    def string(self, key: str) -> str:
        found = self.value(key)
        if not isinstance(found, str):
            raise self.error(key, f"expected a string, found {type(found).__name__}")
        return found

    def integer(self, key: str) -> int:
        found = self.value(key)
        if not isinstance(found, int) or isinstance(found, bool):
            raise self.error(key, f"expected an integer, found {type(found).__name__}")
        return found

    def strings(self, key: str) -> tuple[str, ...]:
        found = self.value(key)
        if not isinstance(found, list) or not all(isinstance(item, str) for item in found):
            raise self.error(key, "expected a list of strings")
        return tuple(found)

    def text(self, key: str, context: Mapping[str, Any] | None = None, *,
             memo: bool = False) -> str:
        """The string at `key` rendered with Jinja2 (StrictUndefined) against `context`.

        memo=True reuses the output for the same placeholder values (most wording is the
        same on every statement). Only for contexts without PHI: brand, dates, ids.
        """
        return self.render(key, None, context, memo=memo)

    def texts(self, key: str, context: Mapping[str, Any] | None = None) -> tuple[str, ...]:
        """A string or list of strings at `key`, each rendered: one entry per paragraph."""
        found = self.value(key)
        if isinstance(found, str):
            return (self.render(key, found, context),)
        if not isinstance(found, list) or not all(isinstance(item, str) for item in found):
            raise self.error(key, "expected a string or a list of strings")
        return tuple(
            self.render(f"{key}[{index}]", item, context) for index, item in enumerate(found)
        )

    def render(self, key: str, source: str | None, context: Mapping[str, Any] | None, *,
               memo: bool = False) -> str:
        """Render `source` (default: the string at `key`), compiled once and cached by `key`."""
        template = self._compiled.get(key)
        if template is None:
            template = self._compile(key, self.string(key) if source is None else source)
        if isinstance(template, str):
            return template
        context = context or {}
        memo_key: tuple[Any, ...] | None = None
        if memo and all(name in context for name in self._names[key]):
            memo_key = (key, *(context[name] for name in self._names[key]))
            found = self._memo.get(memo_key)
            if found is not None:
                return found
        try:
            rendered = template.render(context).strip()
        except (jinja2.UndefinedError, _Missing) as exc:
            # exc names the missing placeholder only, never a value.
            raise self.error(key, f"undefined placeholder ({exc.message})") from None
        except jinja2.TemplateError as exc:
            raise self.error(key, f"cannot render ({type(exc).__name__})") from None
        if memo_key is not None:
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            self._memo[memo_key] = rendered
        return rendered

    def _compile(self, key: str, source: str) -> jinja2.Template | _Placeholders | str:
        compiled: jinja2.Template | _Placeholders | str
        if _only_placeholders(source) and _PLACEHOLDER.search(source):
            compiled = _Placeholders(source)
            self._names[key] = tuple(sorted({name for _, name in compiled.parts if name}))
        elif "{{" in source or "{%" in source or "{#" in source:
            try:
                compiled = _ENV.from_string(source)
                names = jinja2.meta.find_undeclared_variables(_ENV.parse(source))
            except jinja2.TemplateSyntaxError as exc:
                raise self.error(key, f"template syntax error: {exc.message}") from None
            self._names[key] = tuple(sorted(names))
        else:
            compiled = source.strip()
        self._compiled[key] = compiled
        return compiled


def _load(path: Path) -> TemplateFile:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise TemplateError(f"{path}: template file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{path}: invalid TOML ({exc})") from None
    return TemplateFile(path, data)


def _checked_name(kind: str, name: str) -> str:
    """Names become file names: refuse anything that could walk out of the folder."""
    if not _SAFE_NAME.match(name):
        raise TemplateError(f"{kind} name {name!r} is not a valid template name")
    return name


@cache
def statement_text(language: str, templates_dir: Path = DEFAULT_TEMPLATES_DIR) -> TemplateFile:
    """Wording for one language; unknown languages fall back to English."""
    return _load(templates_dir / "statement" / f"{resolve_language(language, templates_dir)}.toml")


def period_label(file: TemplateFile, year: int, month: int) -> str:
    """A statement period as the language file names it (`meta.period` with its own month names:
    "November 2026", "noviembre de 2026", "2026年11月"): the statement and its email alike."""
    months = file.strings("meta.months")
    if len(months) != 12:
        raise file.error("meta.months", "expected 12 month names")
    return file.text("meta.period", {"month": months[month - 1], "year": year})


_TRADITIONAL_REGIONS = frozenset({"TW", "HK", "MO"})
"""Regions whose Chinese readers read traditional characters (zh-TW, zh-HK, zh-MO)."""


@cache
def resolve_language(language: str, templates_dir: Path = DEFAULT_TEMPLATES_DIR) -> str:
    """The language whose wording exists: the member's if we have it ("zh-Hant", "es-US" and
    "ES" as "es", "zh-TW" and "zh-Hant-TW" as "zh-Hant"), else English. Codes are BCP 47,
    matched without regard to case: a language, then optionally a script, then a region (for
    Chinese the region implies the script: Taiwan, Hong Kong and Macao read traditional).

    The one resolution of a member's language: compose (the statement), the email and the
    notices all use it, so a member never gets a statement in one language, an email in another.
    """
    parts = (language or "").strip().replace("_", "-").split("-")
    wanted = parts[0].lower()
    if len(parts) > 1 and len(parts[1]) == 4:
        wanted = f"{wanted}-{parts[1].title()}"
    elif len(parts) > 1 and wanted == "zh" and parts[1].upper() in _TRADITIONAL_REGIONS:
        wanted = "zh-Hant"
    for code in dict.fromkeys((wanted, parts[0].lower())):
        if _LANGUAGE_CODE.match(code) and (templates_dir / "statement" / f"{code}.toml").is_file():
            return code
    return DEFAULT_LANGUAGE


@cache
def brand(name: str, templates_dir: Path = DEFAULT_TEMPLATES_DIR) -> TemplateFile:
    """Insurer identity, contacts, colours and appeal rules for one brand."""
    return _load(templates_dir / "brands" / f"{_checked_name('brand', name)}.toml")


@cache
def password_hints(templates_dir: Path = DEFAULT_TEMPLATES_DIR) -> TemplateFile:
    """How the email tells members to form their PDF password: a table per password policy,
    a string per language (`email/password_hints.toml`)."""
    return _load(templates_dir / "email" / "password_hints.toml")


def clear_caches() -> None:
    """Forget parsed files (tests; a long-lived process after compliance edits the text)."""
    statement_text.cache_clear()
    resolve_language.cache_clear()
    brand.cache_clear()
    password_hints.cache_clear()
    legal_config.cache_clear()


# ------------------------------------------------------------------ plan and state rules

APPEAL_CLOCKS = ("receipt", "notice_date")
"""When the appeal deadline starts: the day the member receives the notice, or its date."""
STATE_CONTACTS = ("consumer_assistance", "insurance_department", "ship", "fair_hearing")
REQUIRED_STATE_CONTACTS = ("fair_hearing",)
"""State contacts the appeal wording cannot do without (the Medicaid review sentence names the
fair hearing office): `[default]` must have each a plan type lists. The others are left out of
a statement when the member's state has none."""
PHONE_OPTIONAL_CONTACTS = ("fair_hearing",)
"""Contacts that may have no phone: a generic office ("your State Medicaid agency") has none,
and the wording then sends the member to the plan's customer service, which helps them ask."""
FEDERAL_CONTACTS = ("ebsa", "hhs", "medicare")
CONTACT_KINDS = (*STATE_CONTACTS, *FEDERAL_CONTACTS)
RIGHT_TO_LEFT_SCRIPTS = frozenset({"Arab", "Hebr"})
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?$")
_STATE_CODE = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True, slots=True)
class Contact:
    """Someone a member can ask for help: an office's name (and its name per language, with the
    English name glossed), phone, TTY and website. Federal offices are named by the statement
    file's [agencies] table: their `name` is ""."""

    kind: str
    name: str
    phone: str
    website: str
    tty: str = ""
    names: tuple[tuple[str, str], ...] = ()

    def name_in(self, language: str) -> str:
        return dict(self.names).get(language, self.name)


@dataclass(frozen=True, slots=True)
class PlanRules:
    """The appeal rules of one plan type (templates/plan_rules.toml)."""

    plan_type: str
    appeal_text: str
    appeal_days: int
    appeal_clock: str
    decision_days_pre_service: int
    decision_days_post_service: int
    expedited_hours: int
    erisa: bool
    contacts: tuple[str, ...]
    fair_hearing_days: int = 0


@dataclass(frozen=True, slots=True)
class StateRules:
    """What depends on the member's state (templates/states.toml): tagline languages, contacts."""

    code: str
    taglines: tuple[str, ...]
    contacts: tuple[tuple[str, Contact], ...] = ()

    def contact(self, kind: str) -> Contact | None:
        return dict(self.contacts).get(kind)


@dataclass(frozen=True, slots=True)
class Tagline:
    """The language-assistance sentence in one language (templates/taglines.toml)."""

    language: str
    name: str
    script: str  # ISO 15924, e.g. "Latn", "Hant", "Arab"
    text: str  # with {{ phone }} and {{ tty }}

    @property
    def right_to_left(self) -> bool:
        return self.script in RIGHT_TO_LEFT_SCRIPTS


@dataclass(frozen=True, eq=False, slots=True)
class LegalConfig:
    """Plan rules, state rules and taglines, checked together when loaded."""

    plans: Mapping[str, PlanRules]
    federal: Mapping[str, Contact]
    states: Mapping[str, StateRules]
    default_state: StateRules
    taglines: Mapping[str, Tagline]
    plans_file: TemplateFile
    states_file: TemplateFile
    taglines_file: TemplateFile

    def tagline_text(self, language: str, context: Mapping[str, Any]) -> str:
        """The tagline of `language` with its {{ phone }} and {{ tty }} filled in."""
        return self.taglines_file.text(f"{language}.text", context, memo=True)

    def plan(self, plan_type: str) -> PlanRules:
        found = self.plans.get(plan_type)
        if found is None:
            raise self.plans_file.error(f"plans.{plan_type}", "no rules for this plan type")
        return found

    def state(self, code: str) -> StateRules:
        return self.states.get((code or "").strip().upper(), self.default_state)

    def require_plan_types(self, plan_types: tuple[str, ...]) -> None:
        """Start-up check: every plan type the model knows has rules."""
        for plan_type in plan_types:
            self.plan(plan_type)


def _typed(file: TemplateFile, key: str, kind: type, node: Mapping[str, Any],
           name: str) -> Any:
    if name not in node:
        raise file.error(f"{key}.{name}", "missing")
    value = node[name]
    if kind is int and (not isinstance(value, int) or isinstance(value, bool)) or (
            kind is not int and not isinstance(value, kind)):
        raise file.error(f"{key}.{name}", f"expected {kind.__name__}, found {type(value).__name__}")
    return value


def _contact(file: TemplateFile, key: str, kind: str, node: Any, *, named: bool) -> Contact:
    if not isinstance(node, Mapping):
        raise file.error(key, "expected a table with name, phone and website")
    names = tuple((name.removeprefix("name_"), value) for name, value in node.items()
                  if name.startswith("name_") and isinstance(value, str))
    phone = (_typed(file, key, str, node, "phone")
             if "phone" in node or kind not in PHONE_OPTIONAL_CONTACTS else "")
    return Contact(kind, _typed(file, key, str, node, "name") if named else "",
                   phone, _typed(file, key, str, node, "website"),
                   str(node.get("tty", "")), names)


def _plan_rules(file: TemplateFile, plan_type: str, node: Any) -> PlanRules:
    key = f"plans.{plan_type}"
    if not isinstance(node, Mapping):
        raise file.error(key, "expected a table")
    contacts = _typed(file, key, list, node, "contacts")
    for index, kind in enumerate(contacts):
        if kind not in CONTACT_KINDS:
            raise file.error(f"{key}.contacts[{index}]",
                             f"unknown contact {kind!r} (known: {', '.join(CONTACT_KINDS)})")
    clock = _typed(file, key, str, node, "appeal_clock")
    if clock not in APPEAL_CLOCKS:
        raise file.error(f"{key}.appeal_clock", f"expected one of {', '.join(APPEAL_CLOCKS)}")
    rules = PlanRules(
        plan_type, _typed(file, key, str, node, "appeal_text"),
        _typed(file, key, int, node, "appeal_days"), clock,
        _typed(file, key, int, node, "decision_days_pre_service"),
        _typed(file, key, int, node, "decision_days_post_service"),
        _typed(file, key, int, node, "expedited_hours"), _typed(file, key, bool, node, "erisa"),
        tuple(contacts),
        _typed(file, key, int, node, "fair_hearing_days") if "fair_hearing" in contacts else 0)
    if rules.appeal_days <= 0:
        raise file.error(f"{key}.appeal_days", "must be a positive number of days")
    if "ebsa" in rules.contacts and not rules.erisa:
        raise file.error(f"{key}.contacts", "the Department of Labor (ebsa) is for ERISA plans only")
    return rules


def _state_rules(file: TemplateFile, key: str, code: str, node: Any,
                 taglines: Mapping[str, Tagline], default: tuple[str, ...]) -> StateRules:
    if not isinstance(node, Mapping):
        raise file.error(key, "expected a table")
    languages = node.get("taglines", list(default))
    if not isinstance(languages, list) or not all(isinstance(x, str) for x in languages):
        raise file.error(f"{key}.taglines", "expected a list of language codes")
    for index, language in enumerate(languages):
        if language not in taglines:
            raise file.error(f"{key}.taglines[{index}]",
                             f"no tagline for {language!r} in taglines.toml")
    if len(set(languages)) != len(languages):
        raise file.error(f"{key}.taglines", "a language is listed twice")
    contacts = tuple((kind, _contact(file, f"{key}.{kind}", kind, node[kind], named=True))
                     for kind in STATE_CONTACTS if kind in node)
    return StateRules(code, tuple(languages), contacts)


def _tagline(file: TemplateFile, language: str, node: Any) -> Tagline:
    key = language
    if not _LANGUAGE_CODE.match(language):
        raise file.error(key, "not a language code (like es, hmn or zh-Hant)")
    if not isinstance(node, Mapping):
        raise file.error(key, "expected a table with name, script and text")
    text = _typed(file, key, str, node, "text")
    if "{{ phone }}" not in text:
        raise file.error(f"{key}.text", "must give the phone number ({{ phone }})")
    return Tagline(language, _typed(file, key, str, node, "name"),
                   _typed(file, key, str, node, "script"), text)


@cache
def legal_config(templates_dir: Path = DEFAULT_TEMPLATES_DIR) -> LegalConfig:
    """templates/plan_rules.toml, states.toml and taglines.toml, loaded and checked together.

    Called when a process starts (and by every render, from the cache): an error names the
    file and the key an operator must fix.
    """
    plans_file = _load(templates_dir / "plan_rules.toml")
    states_file = _load(templates_dir / "states.toml")
    taglines_file = _load(templates_dir / "taglines.toml")
    taglines = {language: _tagline(taglines_file, language, node)
                for language, node in taglines_file._data.items()}  # noqa: SLF001
    plans_node = plans_file.value("plans")
    if not isinstance(plans_node, Mapping):
        raise plans_file.error("plans", "expected a table per plan type")
    plans = {plan_type: _plan_rules(plans_file, plan_type, node)
             for plan_type, node in plans_node.items()}
    federal = {}
    for kind in FEDERAL_CONTACTS:
        if any(kind in rules.contacts for rules in plans.values()):
            federal[kind] = _contact(plans_file, f"contacts.{kind}", kind,
                                     plans_file.value(f"contacts.{kind}"), named=False)
    default_node = states_file.value("default")
    default = _state_rules(states_file, "default", "", default_node, taglines, ())
    if len(default.taglines) < 15:
        raise states_file.error("default.taglines", "list at least 15 languages (45 CFR 92.11)")
    states_node = states_file.value("states") if states_file.has("states") else {}
    states = {}
    for code, node in states_node.items():
        if not _STATE_CODE.match(code):
            raise states_file.error(f"states.{code}", "not a two-letter state code")
        state = _state_rules(states_file, f"states.{code}", code, node, taglines,
                             default.taglines)
        state = StateRules(code, state.taglines, (
            *state.contacts, *((k, c) for k, c in default.contacts if not state.contact(k))))
        states[code] = state
    return LegalConfig(plans, federal, states, default, taglines, plans_file, states_file,
                       taglines_file)
