"""The Explanation of Benefits statement: its design, drawn with the render engine.

Theme and wording come from the brand and language templates; the page furniture, the
claims table, the summary, the accumulators and the legal pages are built here as blocks
the engine lays out. The prompt notice of an adverse benefit determination (one claim) is
drawn from the same pieces.
"""

from pipeline.render.eob.notice import render_notice
from pipeline.render.eob.statement import VARIANTS, RenderError, StatementHeld, render_statement
from pipeline.render.eob.words import format_money, mask_member_id

__all__ = ["VARIANTS", "RenderError", "StatementHeld", "format_money", "mask_member_id", "render_notice",
           "render_statement"]
