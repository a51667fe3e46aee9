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


@cache
def resolve_language(language: str, templates_dir: Path = DEFAULT_TEMPLATES_DIR) -> str:
    """The language whose wording exists: the member's if we have it, else English."""
    code = (language or "").strip().lower()[:2]
    if _SAFE_NAME.match(code) and (templates_dir / "statement" / f"{code}.toml").is_file():
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
