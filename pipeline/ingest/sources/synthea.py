"""Synthea CSV output (v3.0.0 layout) → canonical claim lines, members and plans for one period.

Synthea simulates a whole life of care, so the period's claims are the insured ones billed to the
primary payer in that month (`claims.LASTBILLEDDATE1`); self-pay claims (no primary payer) are not
the insurer's and are left out, both counted in the extract notes. One canonical line per CHARGE
transaction; the transactions that follow a charge in its claim (by CHARGEID) settle it:

| canonical | from Synthea |
| --- | --- |
| billed | CHARGE.AMOUNT |
| copay | PAYMENT rows with METHOD=COPAY |
| plan_paid | payer PAYMENT (METHOD=ECHECK) before any transfer to the secondary payer |
| other_payer_paid | payer PAYMENT after a TRANSFERIN of type 2 (the secondary payer) |
| deductible / coinsurance | the patient's remainder (TRANSFERIN of type p), not split by Synthea: |
|  | shown as deductible when the plan paid nothing, otherwise as coinsurance |
| discount | what is left: billed minus all of the above (Synthea has no allowed amount) |
| payee, paid_date, payment_ref | a line the plan paid: `provider` (the payer's ECHECK pays the |
|  | provider's claim), the latest such PAYMENT's date (not before the billed date: Synthea |
|  | dates payments at the encounter), that PAYMENT's transaction ID |

Gaps and how the statement handles them: no network status (all lines in network), no denials
(every line paid, reason from the largest cost share), no NPI, no plan limits or prior
accumulators (the accumulator section is left off), no e-mail or e-delivery consent (paper), codes
are SNOMED CT / RxNorm with Synthea's own descriptions, state names become USPS codes, a missing
ZIP quarantines the member. Files are streamed in chunks and only the period's claims, their
transactions and their patients are kept, so memory follows the period, not the file.

Each patient is a member of their own, so `patient_id` is the claim's PATIENTID, as
`member_id` is. The other codes the sensitive-services list is matched against are not mapped:
Synthea's diagnoses (claims DIAGNOSIS1–8, DIAGNOSISREF) are SNOMED CT, not ICD-10-CM, its
PLACEOFSERVICE is an organization id, not a CMS place-of-service code, and it bills no revenue
codes; with SNOMED CT procedure codes as well, no Synthea line is recognised as a sensitive
service. The period's confidential-communication requests are not Synthea's: `open_extract`
adds the folder's canonical requests file.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pandas as pd

from pipeline.ingest.sources.amounts import cost_share_reason, money_text
from pipeline.ingest.sources.errors import ExtractFileError
from pipeline.ingest.sources.extract import Extract, ExtractFile
from pipeline.periods import parse_period

REQUIRED = {
    "claims.csv": ["Id", "PATIENTID", "PROVIDERID", "PRIMARYPATIENTINSURANCEID", "SERVICEDATE",
                   "LASTBILLEDDATE1"],
    "claims_transactions.csv": ["CLAIMID", "CHARGEID", "TYPE", "AMOUNT", "METHOD", "FROMDATE",
                                "PROCEDURECODE", "NOTES", "TRANSFERTYPE", "PAYMENTS"],
    "patients.csv": ["Id", "BIRTHDATE", "FIRST", "LAST", "ADDRESS", "CITY", "STATE", "ZIP"],
    "payers.csv": ["Id", "NAME"],
    "providers.csv": ["Id", "NAME"],
}
STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "District of Columbia": "DC",
    "Florida": "FL", "Georgia": "GA", "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN",
    "Iowa": "IA", "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS", "Missouri": "MO",
    "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH", "New Jersey": "NJ",
    "New Mexico": "NM", "New York": "NY", "North Carolina": "NC", "North Dakota": "ND", "Ohio": "OH",
    "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA", "Rhode Island": "RI",
    "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN", "Texas": "TX", "Utah": "UT",
    "Vermont": "VT", "Virginia": "VA", "Washington": "WA", "West Virginia": "WV", "Wisconsin": "WI",
    "Wyoming": "WY", "Puerto Rico": "PR",
}


READ_ROWS = 200_000
"""Rows per chunk: the files are streamed and only the period's rows are kept."""


def _read(folder: Path, name: str,
          keep: Callable[[pd.DataFrame], pd.Series] | None = None) -> pd.DataFrame:
    """One Synthea file, streamed in chunks; `keep` selects the rows worth holding (the period's),
    so memory follows the period, not the simulated lifetimes in the file."""
    path = folder / name
    if not path.exists():
        raise ExtractFileError(f"{name}: not found in the Synthea extract folder {folder.name}")
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8").columns
    except UnicodeDecodeError:
        raise ExtractFileError(f"{name}: the file is not UTF-8 text") from None
    missing = [c for c in REQUIRED[name] if c not in header]
    if missing:
        raise ExtractFileError(f"{name}: missing column(s) {', '.join(missing)}")
    kept, first_row = [], 2  # file row numbers, the header being row 1
    try:
        with pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8",
                         chunksize=READ_ROWS) as chunks:
            for chunk in chunks:
                chunk["_row"] = range(first_row, first_row + len(chunk))
                first_row += len(chunk)
                kept.append(chunk if keep is None else chunk[keep(chunk)])
    except UnicodeDecodeError:
        raise ExtractFileError(f"{name}: the file is not UTF-8 text") from None
    return pd.concat(kept, ignore_index=True) if kept else pd.DataFrame(columns=[*header, "_row"])


def synthea_extract(folder: Path, out: Path, *, period: str | None) -> Extract:
    if period is None:
        raise ExtractFileError(f"{folder.name}: a Synthea extract needs the statement period (YYYY-MM)")
    first, last = parse_period(period)
    out.mkdir(parents=True, exist_ok=True)
    left_out = {"outside": 0, "self_pay": 0}

    def period_insured(chunk: pd.DataFrame) -> pd.Series:
        billed_on = chunk["LASTBILLEDDATE1"].str[:10]
        in_period = (billed_on >= first.isoformat()) & (billed_on <= last.isoformat())
        insured = ~chunk["PRIMARYPATIENTINSURANCEID"].str.strip().isin(["", "0"])
        left_out["outside"] += int((~in_period).sum())
        left_out["self_pay"] += int((in_period & ~insured).sum())
        return in_period & insured

    claims = _read(folder, "claims.csv", period_insured)
    notes = (f"claims.csv: {left_out['outside']} claims billed outside {period} left out",
             f"claims.csv: {left_out['self_pay']} self-pay claims in {period} left out")
    claim_ids, patient_ids = set(claims["Id"]), set(claims["PATIENTID"])
    payers = _read(folder, "payers.csv")
    providers = _read(folder, "providers.csv").set_index("Id")["NAME"].to_dict()
    patients = _read(folder, "patients.csv", lambda chunk: chunk["Id"].isin(patient_ids))
    transactions = _read(folder, "claims_transactions.csv", lambda chunk: chunk["CLAIMID"].isin(claim_ids))
    lines = _lines(claims, transactions, providers, patients)
    members = _members(patients, claims, payers)
    plans = pd.DataFrame({"plan_id": payers["Id"], "plan_name": payers["NAME"], "brand": "default",
                          "deductible_limit": "", "out_of_pocket_limit": ""})
    paths = {}
    for name, frame in (("claims_synthea", lines), ("members", members), ("plans", plans)):
        paths[name] = out / f"{name}.parquet"
        frame.astype(str).to_parquet(paths[name], index=False)
    return Extract("synthea", ExtractFile(paths["plans"], "plans", "payers.csv", 1),
                   ExtractFile(paths["members"], "members", "patients.csv", 1),
                   (ExtractFile(paths["claims_synthea"], "claims", "claims_transactions.csv", 1),), notes)


def _money(text: str) -> Decimal:
    return Decimal(text) if text.strip() else Decimal(0)


def _lines(claims: pd.DataFrame, transactions: pd.DataFrame, providers: dict[str, str],
           patients: pd.DataFrame) -> pd.DataFrame:
    """One row per CHARGE, settled by the transactions that follow it in its claim."""
    names = (patients["FIRST"] + " " + patients["LAST"]).str.strip()
    patient_name = dict(zip(patients["Id"], names, strict=True))
    by_claim = claims.set_index("Id")
    transactions = transactions.assign(_charge=transactions["CHARGEID"].astype(int))
    rows = []
    for claim_id, group in transactions.sort_values(["CLAIMID", "_charge"]).groupby("CLAIMID", sort=True):
        claim = by_claim.loc[claim_id]
        line, line_no = None, 0
        for record in group.to_dict("records"):
            if record["TYPE"] == "CHARGE":
                line_no += 1
                line = _new_line(record, claim, line_no, providers, patient_name)
                rows.append(line)
            elif line is not None:
                _settle(line, record)
    return pd.DataFrame([_finish(row) for row in rows], columns=[
        "claim_id", "line_no", "member_id", "patient_name", "patient_relationship", "provider_name",
        "provider_npi", "network", "service_date", "received_date", "service_code", "service_description",
        "status", "reason_code", "billed", "discount", "plan_paid", "other_payer_paid", "deductible", "copay",
        "coinsurance", "not_covered", "service_code_system", "patient_id", "payee", "paid_date",
        "payment_ref", "_ref", "_row"])


def _new_line(charge: dict, claim: pd.Series, line_no: int, providers: dict[str, str],  # type: ignore[type-arg]
              patient_name: dict[str, str]) -> dict:  # type: ignore[type-arg]
    return {
        "claim_id": charge["CLAIMID"], "line_no": line_no, "member_id": claim["PATIENTID"],
        "patient_id": claim["PATIENTID"],
        "patient_name": patient_name.get(claim["PATIENTID"], ""), "patient_relationship": "self",
        "provider_name": providers.get(claim["PROVIDERID"], ""), "provider_npi": "", "network": "in",
        "service_date": charge["FROMDATE"][:10], "received_date": claim["LASTBILLEDDATE1"][:10],
        "service_code": charge["PROCEDURECODE"], "service_description": charge["NOTES"],
        "status": "paid", "billed": _money(charge["AMOUNT"]), "copay": Decimal(0), "plan_paid": Decimal(0),
        "other_payer_paid": Decimal(0), "remainder": Decimal(0), "secondary": False, "paid_on": "",
        "payment_ref": "",
        "_ref": f"claims_transactions.csv row {charge['_row']} (claim {charge['CLAIMID']}, "
                f"charge {charge['CHARGEID']})",
        "_row": charge["_row"],
    }


def _settle(line: dict, record: dict) -> None:  # type: ignore[type-arg]
    kind, method = record["TYPE"], record["METHOD"]
    if kind == "PAYMENT" and method == "COPAY":
        line["copay"] += _money(record["PAYMENTS"])
    elif kind == "PAYMENT" and method == "ECHECK":  # payers pay electronically, to the provider
        line["other_payer_paid" if line["secondary"] else "plan_paid"] += _money(record["PAYMENTS"])
        if not line["secondary"]:
            line["paid_on"] = max(line["paid_on"], str(record["FROMDATE"])[:10])
            line["payment_ref"] = record["ID"]
    elif kind == "TRANSFERIN" and record["TRANSFERTYPE"] == "2":
        line["secondary"] = True
    elif kind == "TRANSFERIN" and record["TRANSFERTYPE"] == "p":
        line["remainder"] += _money(record["AMOUNT"])


def _finish(line: dict) -> dict:  # type: ignore[type-arg]
    remainder = line.pop("remainder")
    line.pop("secondary")
    paid_on = line.pop("paid_on")
    plan_paid = line["plan_paid"]
    # Synthea dates a payment at the encounter: one dated before the claim was billed is taken as
    # paid the day it was billed
    line["paid_date"] = max(paid_on, line["received_date"]) if plan_paid > 0 else ""
    line["payee"] = "provider" if plan_paid > 0 else ""
    if plan_paid <= 0:
        line["payment_ref"] = ""
    money = {"billed": line["billed"], "plan_paid": plan_paid, "other_payer_paid": line["other_payer_paid"],
             "copay": line["copay"], "deductible": remainder if plan_paid == 0 else Decimal(0),
             "coinsurance": remainder if plan_paid != 0 else Decimal(0), "not_covered": Decimal(0)}
    money["discount"] = (money["billed"] - money["plan_paid"] - money["other_payer_paid"] - money["copay"]
                         - remainder)
    line["reason_code"] = cost_share_reason(money)
    line.update({name: money_text(value) for name, value in money.items()})
    line["service_code_system"] = ""
    return line


def _members(patients: pd.DataFrame, claims: pd.DataFrame, payers: pd.DataFrame) -> pd.DataFrame:
    """Patients with insured claims in the period; plan = the payer of their latest such claim."""
    latest = claims.sort_values("LASTBILLEDDATE1").groupby("PATIENTID")["PRIMARYPATIENTINSURANCEID"].last()
    payer_names = dict(zip(payers["Id"], payers["NAME"], strict=True))
    patients = patients[patients["Id"].isin(latest.index)]
    plan = patients["Id"].map(latest).fillna("")
    return pd.DataFrame({
        "member_id": patients["Id"], "first_name": patients["FIRST"], "last_name": patients["LAST"],
        "date_of_birth": patients["BIRTHDATE"], "address_line1": patients["ADDRESS"], "address_line2": "",
        "city": patients["CITY"], "state": patients["STATE"].map(lambda s: STATES.get(s.strip(), s)),
        "postal_code": patients["ZIP"], "email": "", "language": "en", "plan_id": plan,
        "group_number": "", "line_of_business": plan.map(lambda p: _line_of_business(payer_names.get(p, ""))),
        "edelivery_consent": "N", "ytd_deductible": "0.00", "ytd_out_of_pocket": "0.00",
        "_ref": "patients.csv row " + patients["_row"].astype(str), "_row": patients["_row"],
    })


def _line_of_business(payer_name: str) -> str:
    name = payer_name.lower()
    if "medicaid" in name or "dual" in name:
        return "medicaid"
    if "medicare" in name:
        return "medicare_advantage"
    return "commercial"
