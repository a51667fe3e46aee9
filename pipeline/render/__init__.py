"""Statements as PDFs: render a Statement, encrypt it for the member.

Why it is built this way:
- Speed: millions of statements a month are CPU-bound here, so the statement is laid out by
  a small flow engine of our own (blocks that wrap, split and draw; frames; two-column legal
  pages: `text`, `canvas`, `blocks`, `grid`, `flow`, `document`) and written by
  `pipeline.render.pdf`, not by reportlab's platypus and canvas, whose generic machinery cost
  about three times as much.
- Fonts: every font is embedded as a subset of Noto (Sans, Sans CJK, the script faces of the
  taglines), and widths come from the font files themselves (`fonts`, `text`,
  `pdf.fontfile`); subsets are made once per process, never per statement. Scripts that need
  shaping (Arabic, Hebrew, the Indic scripts, Khmer, Thai, ...) go through HarfBuzz
  (`shaping`), with a simple bidi for right-to-left lines. The files are checked when a
  process starts (`fonts.check_font_files`, via `pipeline.stages.context.open_context`).
- Tagged PDF: the flow draws every block as a structure element in reading order
  (`pdf.structure`), so screen readers get paragraphs, headings, tables and each tagline's
  language.
  Wording that is the same on every statement of a language and brand (appeal rights,
  No Surprises text, taglines, headings) is wrapped and turned into PDF operators once per
  process and reused. Members' names, addresses, ids, dates and amounts are never cached
  (provider names and service descriptions, directory and plan wording, are).
- Layers: `pdf` (writer, R6 security, passwords, encryption) at the bottom, the engine above
  it, the statement design (`eob`) on top; the engine imports nothing of the design.
- Determinism: the same statement always yields the same bytes (see `eob.statement`).
"""

from pipeline.render.eob import (
    VARIANTS,
    RenderError,
    format_money,
    mask_member_id,
    render_notice,
    render_statement,
)
from pipeline.render.memory import freeze_caches
from pipeline.render.pdf import (
    GPU_GUESSES_PER_SECOND,
    POLICIES,
    EncryptionError,
    PasswordPolicy,
    PasswordPolicyError,
    RenderedPdf,
    UnknownPasswordPolicy,
    WeakPasswordPolicy,
    check_policy_strength,
    cpu_seconds_per_guess,
    encrypt_pdf,
    human_duration,
    member_password,
    password_policy,
)

__all__ = [
    "GPU_GUESSES_PER_SECOND",
    "POLICIES",
    "VARIANTS",
    "EncryptionError",
    "PasswordPolicy",
    "PasswordPolicyError",
    "RenderError",
    "RenderedPdf",
    "UnknownPasswordPolicy",
    "WeakPasswordPolicy",
    "check_policy_strength",
    "cpu_seconds_per_guess",
    "encrypt_pdf",
    "format_money",
    "freeze_caches",
    "human_duration",
    "mask_member_id",
    "member_password",
    "password_policy",
    "render_notice",
    "render_statement",
]
