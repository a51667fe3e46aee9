"""The address block of a paper statement, checked and standardised before the piece is batched.

A print vendor prints what it is given: an address that would come back undeliverable costs
postage and a member's statement, and a line cut to fit a window loses the apartment number.
So a doubtful address is refused with a reason code for support to act on, never guessed at and
never truncated. Standardising follows USPS Publication 28 (upper case, no punctuation, standard
suffix, directional and unit abbreviations, the unit on the delivery line) so the vendor's
presort and CASS matching see the address as USPS writes it.

An `AddressProblem` names the field and the reason, never the value: the address is PHI.
"""

from __future__ import annotations

import re
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

import usaddress

__all__ = ["AddressProblem", "AddressReason", "MailingAddress", "prepare_address"]

_ZIP_PREFIXES_PATH = Path(__file__).with_name("zip_prefixes.toml")


class AddressReason(StrEnum):
    """Why an address was refused: one closed set, so reports can count by reason."""

    INCOMPLETE = "incomplete"
    UNPARSEABLE = "unparseable"
    NOT_DOMESTIC = "not_domestic"
    STATE_ZIP_MISMATCH = "state_zip_mismatch"
    TOO_LONG = "too_long"
    TOO_MANY_LINES = "too_many_lines"


class AddressProblem(ValueError):
    """The address cannot be printed as it is; `reason` and `field` say why and where."""

    def __init__(self, reason: AddressReason, field: str, problem: str, action: str) -> None:
        super().__init__(f"mailing address refused ({reason}): {field} {problem}; {action}")
        self.reason = reason
        self.field = field


_FIX = "correct the member's mailing address and re-queue the statement for paper"


@dataclass(frozen=True, slots=True)
class MailingAddress:
    """The lines to print, in order (name, optional attention line, delivery line, last line),
    and the parts a presort and the Intelligent Mail barcode need."""

    lines: tuple[str, ...]
    city: str
    state: str
    zip5: str
    zip4: str

    @property
    def routing_zip(self) -> str:
        """ZIP or ZIP+4 as the barcode's routing code (no delivery point without CASS)."""
        return self.zip5 + self.zip4


# USPS Publication 28, Appendix C1 (street suffixes): the standard abbreviation, then the
# common ways it is written; groups are separated by "|" or a line break. Uncommon suffixes
# pass through upper-cased.
_SUFFIXES = """
ALY ALLEY ALLEE ALLY | AVE AVENUE AV AVEN AVENU AVN AVNUE | BND BEND
BLVD BOULEVARD BOUL BOULV | BR BRANCH BRNCH | BRG BRIDGE BRDGE | BYP BYPASS BYPA BYPAS BYPS
CSWY CAUSEWAY CAUSWA | CTR CENTER CEN CENT CENTR CENTRE CNTER CNTR
CIR CIRCLE CIRC CIRCL CRCL CRCLE | CLF CLIFF | CMN COMMON | COR CORNER | CT COURT CRT | CV COVE
CRK CREEK | CRES CRESCENT CRSENT CRSNT | XING CROSSING CRSSNG | DR DRIVE DRIV DRV
EST ESTATE | ESTS ESTATES | EXPY EXPRESSWAY EXP EXPR EXPRESS EXPW | FLD FIELD | FLDS FIELDS
FRST FOREST FORESTS | FRK FORK | FWY FREEWAY FREEWY FRWAY FRWY | GDNS GARDENS GARDN GRDEN GRDN
GTWY GATEWAY GATEWY GATWAY GTWAY | GLN GLEN | GRN GREEN | GRV GROVE GROV
HBR HARBOR HARB HARBR HRBOR | HVN HAVEN | HTS HEIGHTS HT | HWY HIGHWAY HIGHWY HIWAY HIWY HWAY
HL HILL | HOLW HOLLOW HLLW HOLLOWS HOLWS | IS ISLAND ISLND | JCT JUNCTION JCTION JCTN JUNCTN
KNL KNOLL KNOL | LK LAKE | LKS LAKES | LNDG LANDING LNDNG | LN LANE | MNR MANOR
MDWS MEADOWS MDW MEDOWS | ML MILL | MTN MOUNTAIN MNTAIN MNTN MOUNTIN MTIN | ORCH ORCHARD ORCHRD
PKWY PARKWAY PARKWY PKWAY PKY PARKWAYS PKWYS | PL PLACE | PLZ PLAZA PLZA | PT POINT | PNES PINES
RDG RIDGE RDGE | RIV RIVER RVR RIVR | RD ROAD | RTE ROUTE | SHRS SHORES | SKWY SKYWAY
SPGS SPRINGS SPNGS SPRNGS | SQ SQUARE SQR SQRE SQU | STA STATION STATN STN | ST STREET STRT STR
SMT SUMMIT SUMIT SUMITT | TER TERRACE TERR | TRCE TRACE TRACES | TRL TRAIL TRAILS TRLS
TPKE TURNPIKE TRNPK TURNPK | TUNL TUNNEL TUNEL TUNLS TUNNELS TUNNL | VLY VALLEY VALLY VLLY
VW VIEW | VLG VILLAGE VILL VILLAG VILLG VILLIAGE | VIS VISTA VIST VST VSTA | WLS WELLS
"""

# Appendix C2 (secondary unit designators).
_UNITS = """
APT APARTMENT APPT | BSMT BASEMENT | BLDG BUILDING BLDNG BLD | DEPT DEPARTMENT | FL FLOOR FLR
FRNT FRONT | HNGR HANGAR HANGER | KEY | LBBY LOBBY | LOT | LOWR LOWER | OFC OFFICE | PH PENTHOUSE
PIER | REAR | RM ROOM | SIDE | SLIP | SPC SPACE | STOP | STE SUITE | TRLR TRAILER | UNIT
UPPR UPPER
"""

# Appendix B (directionals).
_DIRECTIONALS = """
N NORTH | S SOUTH | E EAST | W WEST | NE NORTHEAST NORTH-EAST | NW NORTHWEST NORTH-WEST
SE SOUTHEAST SOUTH-EAST | SW SOUTHWEST SOUTH-WEST
"""


def _table(text: str) -> dict[str, str]:
    """`STD VARIANT ... | STD ...` → {every spelling, the standard one included: standard}."""
    table: dict[str, str] = {}
    for group in re.split(r"[|\n]", text):
        words = group.split()
        table.update((word, words[0]) for word in words)
    return table


_SUFFIX = _table(_SUFFIXES)
_UNIT = _table(_UNITS)
_DIRECTIONAL = _table(_DIRECTIONALS)
_DIRECTIONAL |= {f"{a} {b}": _DIRECTIONAL[a + b] for a in ("NORTH", "SOUTH") for b in ("EAST", "WEST")}
_BOX_GROUPS = {"RR": "RR", "RURAL ROUTE": "RR", "RURAL RTE": "RR", "RURAL RT": "RR", "RT": "RR",
               "HC": "HC", "HIGHWAY CONTRACT": "HC", "HWY CONTRACT": "HC", "STAR ROUTE": "HC",
               "PSC": "PSC", "CMR": "CMR", "UNIT": "UNIT"}
_ATTENTION = re.compile(r"^(C/O|C / O|CARE OF|ATTN|ATTENTION)\b[: ]*", re.IGNORECASE)
_ZIP = re.compile(r"^(\d{5})(?:[- ]?(\d{4}))?$")
_STREET_LABELS = frozenset({
    "AddressNumberPrefix", "AddressNumber", "AddressNumberSuffix", "StreetNamePreModifier",
    "StreetNamePreDirectional", "StreetNamePreType", "StreetName", "StreetNamePostType",
    "StreetNamePostDirectional", "StreetNamePostModifier",
})
_SECONDARY_LABELS = frozenset({"OccupancyType", "OccupancyIdentifier", "SubaddressType",
                               "SubaddressIdentifier"})


@cache
def _zip_prefixes() -> Mapping[str, frozenset[str]]:
    """State code → its 3-digit ZIP prefixes, from zip_prefixes.toml (read once)."""
    data = tomllib.loads(_ZIP_PREFIXES_PATH.read_text(encoding="utf-8"))
    table: dict[str, frozenset[str]] = {}
    for state, ranges in data["prefixes"].items():
        prefixes: set[str] = set()
        for item in ranges:
            low, _, high = item.partition("-")
            prefixes.update(f"{n:03d}" for n in range(int(low), int(high or low) + 1))
        table[state] = frozenset(prefixes)
    return table


def _clean(value: str | None) -> str:
    """Upper case, single spaces, and plain ASCII letters (José → JOSE): what USPS and the
    window stamp print; a character with no ASCII form is left for the length and stamp checks."""
    folded = unicodedata.normalize("NFKD", value or "")
    ascii_only = "".join(c for c in folded if not unicodedata.combining(c))
    return " ".join(ascii_only.split()).upper()


def _plain(value: str) -> str:
    """Publication 28 punctuation: none but the hyphen, the slash of a fraction and '#'."""
    return " ".join(value.replace(".", " ").replace(",", " ").split()).upper()


def prepare_address(name: str, line1: str, line2: str | None, city: str, state: str,
                    zip_code: str, *, max_chars: int = 40, max_lines: int = 5) -> MailingAddress:
    """The address block to print, or `AddressProblem` saying which field to correct and why.

    `line2` may hold the apartment or unit (moved onto the delivery line) or a "C/O" / "ATTN"
    line (printed under the name). Lines over `max_chars` or blocks over `max_lines` are
    refused, never cut: a shortened line can deliver to the wrong door.
    """
    name_, line1_, line2_, city_ = _clean(name), _clean(line1), _clean(line2), _clean(city)
    state_, zip_ = _clean(state), "".join(zip_code.split()) if zip_code else ""
    for field, value in (("name", name_), ("line1", line1_), ("city", city_),
                         ("state", state_), ("zip_code", zip_)):
        if not value:
            raise AddressProblem(AddressReason.INCOMPLETE, field, "is empty", _FIX)

    zip5, zip4 = _zip_for_state(state_, zip_)
    attention, delivery = _delivery_line(line1_, line2_)
    city_ = _plain(city_)
    lines = (name_, *([attention] if attention else []), delivery, f"{city_} {state_} "
             f"{zip5}{'-' + zip4 if zip4 else ''}")

    labels = ("recipient name", *(["attention line"] if attention else []), "delivery line",
              "last line")
    for label, line in zip(labels, lines, strict=True):
        if len(line) > max_chars:
            raise AddressProblem(
                AddressReason.TOO_LONG, label,
                f"is {len(line)} characters, over the print limit of {max_chars}",
                "shorten it in the member's mailing address (it is never cut, so no part of the "
                "address is lost) and re-queue the statement for paper")
    if len(lines) > max_lines:
        raise AddressProblem(
            AddressReason.TOO_MANY_LINES, "address block",
            f"has {len(lines)} lines, over the print limit of {max_lines}",
            "remove the C/O or ATTN line from the member's mailing address, or have the print "
            "vendor's line limit raised, then re-queue the statement for paper")
    return MailingAddress(lines=lines, city=city_, state=state_, zip5=zip5, zip4=zip4 or "")


def _zip_for_state(state: str, zip_code: str) -> tuple[str, str]:
    prefixes = _zip_prefixes()
    if not re.fullmatch(r"[A-Z]{2}", state):
        raise AddressProblem(AddressReason.UNPARSEABLE, "state",
                             "is not a two-letter USPS state code", _FIX)
    if state not in prefixes:
        raise AddressProblem(
            AddressReason.NOT_DOMESTIC, "state",
            "is not a US state, territory or military (AA/AE/AP) code",
            "check whether the member lives abroad: foreign mail needs the international process; "
            f"otherwise {_FIX}")
    match = _ZIP.match(zip_code)
    if match is None:
        if re.search(r"[A-Za-z]", zip_code):
            raise AddressProblem(
                AddressReason.NOT_DOMESTIC, "zip_code", "looks like a foreign postal code",
                "check whether the member lives abroad: foreign mail needs the international "
                f"process; otherwise {_FIX}")
        raise AddressProblem(AddressReason.UNPARSEABLE, "zip_code",
                             "is not a 5-digit ZIP or ZIP+4", _FIX)
    zip5, zip4 = match.group(1), match.group(2) or ""
    if zip5[:3] not in prefixes[state]:
        raise AddressProblem(
            AddressReason.STATE_ZIP_MISMATCH, "zip_code",
            "does not belong to the state given (its first three digits are not that state's)",
            f"confirm the state and ZIP with the member; {_FIX}")
    return zip5, zip4


def _delivery_line(line1: str, line2: str) -> tuple[str | None, str]:
    """(attention line or None, the standardised delivery line)."""
    attention, street = None, f"{line1}, {line2}" if line2 else line1
    for first, second in ((line1, line2), (line2, line1)):
        found = _ATTENTION.match(first)
        if found and second:
            title = "ATTN" if found.group(1).startswith("ATT") else "C/O"
            attention, street = f"{title} {first[found.end():]}".strip(), second
            break
    field = "street (line1/line2)" if line2 else "street (line1)"
    unreadable = AddressProblem(
        AddressReason.UNPARSEABLE, field,
        "could not be read as one US street address or PO box", _FIX)
    try:
        parts, kind = usaddress.tag(street)
    except usaddress.RepeatedLabelError:
        raise unreadable from None  # its message repeats the address
    if kind == "Street Address":
        delivery = _street(parts)
    elif kind == "PO Box":
        delivery = _box(parts)
    else:
        delivery = None
    if delivery is None:
        raise unreadable
    return attention, delivery


def _street(parts: Mapping[str, str]) -> str | None:
    if set(parts) - _STREET_LABELS - _SECONDARY_LABELS:
        return None  # a city, a name or a second street on the street line
    if "AddressNumber" not in parts or "StreetName" not in parts:
        return None
    words: list[str] = []
    for label, raw in parts.items():
        value = _plain(raw)
        if label in ("StreetNamePreDirectional", "StreetNamePostDirectional"):
            value = _DIRECTIONAL.get(value, value)
        elif label == "StreetNamePostType":
            value = _SUFFIX.get(value, value)
        if label in _STREET_LABELS:
            words.append(value)
    return " ".join(words + _secondary(parts))


def _secondary(parts: Mapping[str, str]) -> list[str]:
    """The unit, after the street: "APT 4B", "BLDG C FL 3", or "# 12" with no designator."""
    words: list[str] = []
    for kind, ident in (("SubaddressType", "SubaddressIdentifier"),
                        ("OccupancyType", "OccupancyIdentifier")):
        designator = _UNIT.get(_plain(parts.get(kind, "")), _plain(parts.get(kind, "")))
        number = _plain(parts.get(ident, "")).lstrip("#").strip()
        if designator or number:
            words.append(f"{designator or '#'} {number}".strip())
    return words


def _box(parts: Mapping[str, str]) -> str | None:
    """A PO box ("PO BOX 123"), a rural or highway contract route box ("RR 2 BOX 15"), or a
    military box ("PSC 1234 BOX 5678", "UNIT 2050 BOX 4190")."""
    box = _plain(parts.get("USPSBoxID", "")).lstrip("#").strip()
    group_type = group_id = ""
    for kind, ident in (("USPSBoxGroupType", "USPSBoxGroupID"), ("SubaddressType",
                        "SubaddressIdentifier"), ("OccupancyType", "OccupancyIdentifier")):
        if kind in parts:
            if group_type:
                return None
            group_type, group_id = _plain(parts[kind]), _plain(parts.get(ident, ""))
    allowed = {"USPSBoxType", "USPSBoxID", "USPSBoxGroupType", "USPSBoxGroupID", "SubaddressType",
               "SubaddressIdentifier", "OccupancyType", "OccupancyIdentifier"}
    if not box or set(parts) - allowed:
        return None
    if group_type:
        if group_type not in _BOX_GROUPS or not group_id:
            return None
        return f"{_BOX_GROUPS[group_type]} {group_id} BOX {box}"
    return f"PO BOX {box}"
