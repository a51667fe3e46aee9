"""The USPS Intelligent Mail barcode (IMb, USPS-B-3200) printed on each paper statement.

The encoder is reportlab's `USPS_4State`, which carries the specification's worked examples as
doctests; this module adds what reportlab does not check: the field rules a mail piece needs
before USPS accepts it (an unknown Mailer ID length or a Barcode ID whose second digit is above 4
would still encode, but the barcode would be rejected or misrouted), and drawing at the nominal
USPS bar dimensions so the print vendor's tolerance is centred, not at its edge.

Messages never carry the values: the routing ZIP is part of a member's address.
"""

from __future__ import annotations

from dataclasses import dataclass

from reportlab.graphics.barcode.usps4s import USPS_4State
from reportlab.lib.colors import black
from reportlab.pdfgen.canvas import Canvas

__all__ = ["ImbError", "ImbFields", "bar_states", "draw_imb", "serial_for", "tracking_code"]

# reportlab scales every dimension between the specification's minimum (0) and maximum (1);
# the middle gives the nominal bar width (0.020 in), pitch (22 bars per inch) and heights.
_NOMINAL = 0.5


class ImbError(ValueError):
    """A field of the Intelligent Mail barcode breaks USPS-B-3200; `field` names it."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"Intelligent Mail barcode field {field!r}: {problem}")
        self.field = field


def _digits(field: str, value: str, lengths: tuple[int, ...], action: str) -> None:
    if not isinstance(value, str) or not value.isascii() or not (value.isdigit() or value == ""):
        raise ImbError(field, f"must be ASCII digits only; {action}")
    if len(value) not in lengths:
        allowed = " or ".join(str(n) for n in lengths)
        raise ImbError(field, f"must be {allowed} digits, not {len(value)}; {action}")


@dataclass(frozen=True)
class ImbFields:
    """The five IMb fields, checked when built so a bad piece fails before its batch is printed.

    `mailer_id` is the 6-digit (first digit 0-8) or 9-digit (first digit 9) Mailer ID USPS
    assigned to the insurer; `serial` fills the tracking code to 20 digits (9 digits with a
    6-digit Mailer ID, 6 with a 9-digit one). `routing_zip` is empty, a ZIP, ZIP+4 or ZIP+4 with
    the 2-digit delivery point.
    """

    barcode_id: str
    service_type: str
    mailer_id: str
    serial: str
    routing_zip: str

    def __post_init__(self) -> None:
        settings = "correct it in the paper mail settings"
        _digits("barcode_id", self.barcode_id, (2,), settings)
        if self.barcode_id[1] not in "01234":
            raise ImbError("barcode_id", f"second digit must be 0-4 (USPS-B-3200); {settings}")
        _digits("service_type", self.service_type, (3,), settings)
        _digits("mailer_id", self.mailer_id, (6, 9), settings)
        nine = len(self.mailer_id) == 9
        if nine != self.mailer_id.startswith("9"):
            raise ImbError(
                "mailer_id",
                "a 9-digit Mailer ID starts with 9 and a 6-digit one does not; "
                f"{settings} from the Mailer ID USPS assigned",
            )
        serial_width = 6 if nine else 9
        _digits("serial", self.serial, (serial_width,),
                f"a {len(self.mailer_id)}-digit Mailer ID takes a {serial_width}-digit serial; "
                "build it with serial_for")
        _digits("routing_zip", self.routing_zip, (0, 5, 9, 11),
                "correct the member's ZIP code in the mailing address")


def tracking_code(fields: ImbFields) -> str:
    """The 20-digit tracking code: Barcode ID, Service Type ID, Mailer ID, serial."""
    return fields.barcode_id + fields.service_type + fields.mailer_id + fields.serial


def _widget(fields: ImbFields) -> USPS_4State:
    return USPS_4State(tracking_code(fields), fields.routing_zip,
                       widthSize=_NOMINAL, heightSize=_NOMINAL, humanReadable=0)


def bar_states(fields: ImbFields) -> str:
    """The 65 bars, left to right: F full, A ascender, D descender, T tracker."""
    bars: str = _widget(fields).barcodes
    return bars


def draw_imb(canvas: Canvas, x: float, y: float, fields: ImbFields) -> None:
    """Draw the barcode in black with its lower-left clear-zone corner at (x, y), in points.

    The drawing includes USPS's clear zone (0.125 in each side, 0.028 in above and below), so
    nothing else may be placed inside that box. Bars are at the nominal dimensions: 0.020 in
    wide, 22 to the inch, a full bar 0.145 in and a tracker 0.048 in tall.
    """
    widget = _widget(fields)
    canvas.saveState()
    canvas.setFillColor(black)
    widget.drawOn(canvas, x, y)
    canvas.restoreState()


def serial_for(sequence: int, width: int) -> str:
    """`sequence` as a zero-padded serial of `width` digits (9 with a 6-digit Mailer ID, 6 with
    a 9-digit one); refuses rather than wrapping, since a repeated serial breaks USPS tracking."""
    if width not in (6, 9):
        raise ImbError("serial", f"width must be 6 or 9 digits, not {width}")
    if sequence < 0 or sequence >= 10**width:
        raise ImbError(
            "serial",
            f"sequence number does not fit in {width} digits; start a new Mailer ID serial "
            "range or ask USPS for another Mailer ID",
        )
    return f"{sequence:0{width}d}"
