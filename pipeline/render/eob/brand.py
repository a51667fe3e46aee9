"""The brand's look: colours as a Theme and the letterhead logo, read once per brand file."""

from __future__ import annotations

from functools import cache, lru_cache

from reportlab.lib import colors

from pipeline.render.canvas import Image, Theme, read_jpeg, rgb
from pipeline.templates import TemplateError, TemplateFile


def _mix(color: colors.Color, share: float) -> colors.Color:
    """`share` of the colour over white: light tints that print well in grayscale too."""
    return colors.Color(*(1 - share + share * c for c in (color.red, color.green, color.blue)))


@cache
def brand_theme(brand_file: TemplateFile) -> Theme:
    """The brand's colours as a Theme, checked once per brand file (rules are a fixed grey)."""
    def color(key: str) -> colors.Color:
        try:
            return colors.HexColor(brand_file.string(f"colors.{key}"))
        except ValueError as exc:
            if isinstance(exc, TemplateError):
                raise
            raise brand_file.error(f"colors.{key}", "not a #RRGGBB colour") from None

    accent = color("accent")
    return Theme(
        primary=rgb(color("primary")),
        accent=rgb(accent),
        tint=rgb(color("tint")),
        accent_tint=rgb(_mix(accent, 0.14)),
        text=rgb(color("text")),
        muted=rgb(color("muted")),
        alert=rgb(color("alert")),
        rule=rgb(colors.Color(0.78, 0.81, 0.83)),
    )


@lru_cache(maxsize=64)
def brand_logo(brand_file: TemplateFile) -> tuple[Image, float] | None:
    """The brand's letterhead logo and its height in points, read once; None if it has none."""
    if not brand_file.has("identity.logo"):
        return None
    path = brand_file.path.parent / brand_file.string("identity.logo")
    if path.parent != brand_file.path.parent:
        raise brand_file.error("identity.logo", "must be a file name next to the brand file")
    try:
        image = read_jpeg(path, "Logo")
    except (OSError, ValueError) as exc:
        raise brand_file.error("identity.logo", f"unusable logo ({exc})") from None
    height = brand_file.integer("identity.logo_height") if brand_file.has(
        "identity.logo_height") else 40
    return image, float(height)
