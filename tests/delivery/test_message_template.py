"""The message template gives byte for byte what the email package gives for the same message
(boundaries aside, which the email package draws at random), for plain and awkward recipients,
every language and attachment sizes around base64's line length."""

from __future__ import annotations

import base64
import email
import email.policy
import random
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.delivery.message import (
    MessageTemplate,
    build_message,
    email_language,
    mime_base64,
    render_email,
)
from pipeline.templates import resolve_language

_BOUNDARY = re.compile(rb"={15}\d+==")
CONTEXT = {"support_phone": "1-800-555-0100", "brand_name": "Example Health",
           "password_hint": "hint", "period_label": "2026-11"}


def _template(language: str) -> tuple[MessageTemplate, dict[str, object]]:
    common: dict[str, object] = {
        "from_address": "statements@eob.example", "from_name": "Member Statements",
        "message_id_domain": "eob.example", "pdf_filename": "statement-2026-11.pdf",
        "content": render_email(language=language, context=CONTEXT)}
    return MessageTemplate(**common), common  # type: ignore[arg-type]


TEMPLATES = {language: _template(language) for language in ("en", "es")}

local = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789.+_-", min_size=1, max_size=70)
awkward = st.sampled_from(["a" * 90 + "@example.org", "b" * 62 + "@example.org",
                           "=?utf-8?q?x?=@example.org"])  # folded or full path


@settings(max_examples=60, deadline=None)
@given(language=st.sampled_from(["en", "es"]),
       recipient=st.one_of(local.map(lambda part: f"{part}@example.org"), awkward),
       statement=st.from_regex(r"st-2026-11-[0-9a-f]{16}", fullmatch=True),
       size=st.one_of(st.integers(0, 200), st.integers(40_000, 60_000)),
       fill=st.binary(min_size=1, max_size=64))
def test_template_bytes_equal_the_email_packages(language: str, recipient: str, statement: str,
                                                 size: int, fill: bytes) -> None:
    template, common = TEMPLATES[language]
    pdf = b"%PDF-2.0\n" + (fill * (size // len(fill) + 1))[:size]
    when = datetime(2026, 12, 6, 10, 30, tzinfo=UTC)
    try:
        expected = build_message(statement_id=statement, recipient=recipient, envelope_from="b@x.example",
                                 pdf=pdf, date=when, **common).as_bytes(policy=email.policy.SMTP)  # type: ignore[arg-type]
    except Exception as refused:  # an address the email package will not write: refused alike
        with pytest.raises(type(refused)):
            template.message_bytes(statement_id=statement, recipient=recipient,
                                   envelope_from="b@x.example", pdf=pdf, date=when)
        return
    got = template.message_bytes(statement_id=statement, recipient=recipient,
                                 envelope_from="b@x.example", pdf=pdf, date=when)
    assert _BOUNDARY.sub(b"B", got) == _BOUNDARY.sub(b"B", expected)
    parsed = email.message_from_bytes(got, policy=email.policy.default)
    attachment = next(parsed.iter_attachments())
    assert attachment.get_content() == pdf and parsed["To"] == recipient


@pytest.mark.parametrize(("code", "language"), [
    ("ES", "es"), ("es-US", "es"), ("es_US", "es"), ("zh-TW", "zh-Hant"),
    ("zh-Hant-TW", "zh-Hant"), ("zh-Hant", "zh-Hant"), ("fr", "en"), ("", "en"),
])
def test_the_email_resolves_the_language_as_the_statement_does(code: str, language: str) -> None:
    """Before: only exact codes counted, so an "ES" or "zh-TW" member got an English email (the
    email used to lower-case: "ES" was a regression); now the one resolution compose uses."""
    assert email_language(code) == language == resolve_language(code)
    assert render_email(language=code, context=CONTEXT) == render_email(language=language,
                                                                         context=CONTEXT)


@settings(max_examples=150, deadline=None)
@given(size=st.one_of(st.integers(0, 400), st.integers(56_900, 57_100)), seed=st.integers(0, 2**32))
def test_attachment_base64_is_the_standard_librarys(size: int, seed: int) -> None:
    """The lines a mail reader decodes: what base64.encodebytes writes, with CRLF line ends,
    for empty data, partial last lines and whole ones (multiples of 57 bytes)."""
    data = random.Random(seed).randbytes(size)
    assert mime_base64(data) == base64.encodebytes(data).replace(b"\n", b"\r\n")
    assert mime_base64(bytes(57 * 3)).count(b"\r\n") == 3
