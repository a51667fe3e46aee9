"""A statement whose claims got a prompt notice of their own says so, just before the appeal
rights, in the member's language, with the claim and the day the notice leaves."""

from __future__ import annotations

import dataclasses
from datetime import date

from pipeline.model import SeparateNotice, Statement
from pipeline.render import render_statement
from tests.render.test_eob import joined_words
from tests.render.test_notice import DENIED, PARTIAL, three_claims


def _with_notices(language: str = "en") -> Statement:
    statement = three_claims(language)
    return dataclasses.replace(statement, separate_notices=[
        SeparateNotice(DENIED, date(2026, 12, 7)), SeparateNotice(PARTIAL, date(2026, 12, 9))])


def test_each_separate_notice_is_named_with_its_day_before_the_appeal_rights() -> None:
    words = joined_words(render_statement(_with_notices(), variant="email").pdf)
    first = (f"A separate notice about claim {DENIED} was sent (or is being sent) to you on "
             "December 7, 2026. It explains our decision on that claim and how to appeal it.")
    second = (f"A separate notice about claim {PARTIAL} was sent (or is being sent) to you on "
              "December 9, 2026.")
    assert first in words and second in words
    assert words.index(first) < words.index("Important information about your right to appeal")


def test_the_spanish_statement_says_it_in_spanish_with_the_month_spelled_out() -> None:
    words = joined_words(render_statement(_with_notices("es"), variant="print").pdf)
    assert (f"Se le envió (o se le está enviando) el 7 de diciembre de 2026 un aviso por separado sobre la "
            f"reclamación {DENIED}.") in words
    assert "A separate notice" not in words


def test_a_statement_without_separate_notices_says_nothing_about_them() -> None:
    statement = three_claims()
    words = joined_words(render_statement(statement).pdf)
    assert "separate notice" not in words
    assert render_statement(statement).pdf == render_statement(three_claims()).pdf
    assert render_statement(_with_notices()).pdf != render_statement(statement).pdf
