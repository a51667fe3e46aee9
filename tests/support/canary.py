"""A canary member: a recognisable name, street and date of birth planted in an extract, so a
test can search every log, task log, email and ledger row for them."""

from __future__ import annotations

import csv
from pathlib import Path

CANARY_FIRST, CANARY_LAST = "Zebedee", "Canaryphi"
CANARY_STREET = "77 Canarywharf Lane"
CANARY_DOB = "1957-04-03"
PAPER_CANARY_LAST, PAPER_CANARY_STREET = "Paperphi", "78 Canarywharf Lane"
CANARY_STRINGS = [CANARY_FIRST, CANARY_LAST, CANARY_STREET, CANARY_DOB, "04031957",
                  PAPER_CANARY_LAST, PAPER_CANARY_LAST.upper(), "CANARYWHARF"]

def canary_member(folder: Path) -> dict[str, str]:
    """The canary's row in the extract's members.csv (its member ID is the generator's)."""
    with (folder / "members.csv").open(newline="", encoding="utf-8") as handle:
        return next(row for row in csv.DictReader(handle) if row["last_name"] == CANARY_LAST)


def paper_canary_member(folder: Path) -> dict[str, str]:
    """The paper canary's row in the extract's members.csv."""
    with (folder / "members.csv").open(newline="", encoding="utf-8") as handle:
        return next(row for row in csv.DictReader(handle) if row["last_name"] == PAPER_CANARY_LAST)


def plant_canary(folder: Path) -> None:
    """Member 1 gets a recognisable name, street and date of birth, everywhere it appears, and
    is emailed; member 2, a recognisable name and street, and no e-delivery consent: paper."""
    path = folder / "members.csv"
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    rows[0].update(first_name=CANARY_FIRST, last_name=CANARY_LAST, address_line1=CANARY_STREET,
                   date_of_birth=CANARY_DOB, email="zebedee.canary0@gmail.com",
                   edelivery_consent="Y")
    rows[1].update(last_name=PAPER_CANARY_LAST, address_line1=PAPER_CANARY_STREET, edelivery_consent="N")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for claims in folder.glob("claims*.csv"):
        lines = list(csv.reader(claims.open(newline="", encoding="utf-8")))
        for line in lines[1:]:
            if line[2] == rows[0]["member_id"]:
                line[3] = f"{CANARY_FIRST} {CANARY_LAST}"
        with claims.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(lines)
