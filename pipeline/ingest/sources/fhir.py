"""FHIR R4 ExplanationOfBenefit (CARIN Blue Button) → canonical claim lines, members and plans.

Accepts NDJSON bulk-export files (one resource per line, optionally .gz), Bundles (any type)
and single-resource JSON files in one folder. Pass 1 indexes the supporting resources the EOBs
reference (Patient, Coverage, Organization, Practitioner), keeping only the fields a statement
needs; pass 2 streams the EOBs and writes one canonical row per EOB item, in batches, to
Parquet under the run's work folder. Ingest then validates those rows like any other extract.

Mapping (see docs/extract-format.md, "FHIR"): amounts come from the item's adjudication
(`submitted`, `discount` or `eligible`, `benefit`/`paidtoprovider`+`paidtopatient`,
`priorpayerpaid`, `deductible`, `copay`, `coinsurance`, `noncovered`), or from the EOB's
`total` when the items carry none (one line for the claim). The codes the sensitive-services
list is matched against come from the item (its ICD-10-CM diagnoses by `diagnosisSequence`, else
all the claim's; `revenue`; `locationCodeableConcept`): codes of systems not read here are
dropped, a malformed code of the right system is passed on for ingest to quarantine by name.
Status, reason codes, adjustments, payment and the claim an adjusted EOB replaces come from
`fhir_adjudication` (`adjustmentreason`/`denialreason` X12 CARCs given a group code from the
reason table; `outcome`, `payment`, `payee`, `related`). A reversal item (the exact negative of
an earlier item of the same claim) and the item it reverses are set aside as a pair. Rows the
mapping cannot complete carry the problem (`_field`, `_reason`) so the quarantine names it;
`_ref` says which resource and item a row came from. The supporting-resource index is held in
memory (a few hundred bytes per patient); EOBs are streamed. The period's
confidential-communication requests are not FHIR: `open_extract` adds the folder's canonical
requests file.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.ingest.sources.amounts import money_text
from pipeline.ingest.sources.errors import ExtractFileError, ExtractSourceError
from pipeline.ingest.sources.extract import Extract, ExtractFile
from pipeline.ingest.sources.fhir_adjudication import adjudication_fields

CLAIM_FIELDS = [
    "claim_id", "line_no", "member_id", "patient_name", "patient_relationship", "provider_name",
    "provider_npi", "network", "service_date", "received_date", "service_code", "service_description",
    "status", "reason_code", "billed", "discount", "plan_paid", "other_payer_paid", "deductible", "copay",
    "coinsurance", "not_covered", "service_code_system", "patient_id", "diagnosis_codes", "revenue_code",
    "place_of_service", "adjustments", "payee", "paid_date", "payment_ref", "original_claim_id",
    "_ref", "_field", "_reason",
]
MEMBER_FIELDS = [
    "member_id", "first_name", "last_name", "date_of_birth", "address_line1", "address_line2", "city",
    "state", "postal_code", "email", "language", "plan_id", "group_number", "line_of_business",
    "edelivery_consent", "ytd_deductible", "ytd_out_of_pocket", "_ref",
]
PLAN_FIELDS = ["plan_id", "plan_name", "brand", "deductible_limit", "out_of_pocket_limit"]
BATCH_ROWS = 20_000
NPI_SYSTEM = "http://hl7.org/fhir/sid/us-npi"
ICD10CM_SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
REVENUE_SYSTEM = "https://www.nubc.org/CodeSystem/RevenueCodes"
PLACE_SYSTEM = "https://www.cms.gov/Medicare/Coding/place-of-service-codes/Place_of_Service_Code_Set"
CODE_SYSTEMS = {"cpt": "cpt", "hcpcs": "hcpcs", "ndc": "ndc", "cdt": "cdt", "revenue": "revenue",
                "nubc": "revenue", "rxnorm": "rxnorm", "snomed": "snomed"}
LAY_DESCRIPTIONS = {  # printed instead of licensed code descriptors (CPT, CDT, NUBC)
    "professional": "Professional service", "institutional": "Hospital or facility service",
    "pharmacy": "Prescription drug", "oral": "Dental service", "vision": "Vision service",
}
RELATIONSHIPS = {"self": "self", "spouse": "spouse", "child": "child"}
MONEY_CATEGORIES = ("submitted", "discount", "eligible", "benefit", "paidtoprovider", "paidtopatient",
                    "priorpayerpaid", "deductible", "copay", "coinsurance", "noncovered")
REVERSED = "reversal pair: a later item of the same claim cancels this one (the pair nets to zero)"
REVERSAL = "reversal pair: this item cancels an earlier item of the same claim (the pair nets to zero)"


@dataclass(slots=True)
class _Index:
    """Supporting resources by reference ("Patient/123", or a Bundle entry's fullUrl)."""

    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    patients: list[str] = field(default_factory=list)
    coverage_of: dict[str, dict[str, Any]] = field(default_factory=dict)  # patient key → Coverage
    patient_files: set[str] = field(default_factory=set)

    def get(self, reference: str | None) -> dict[str, Any] | None:
        if not reference:
            return None
        found = self.resources.get(reference)
        if found is None and "/" in reference:
            found = self.resources.get("/".join(reference.rstrip("/").split("/")[-2:]))
        return found


def fhir_extract(folder: Path, out: Path, *, period: str | None = None) -> Extract:
    """Map a folder of FHIR resources to canonical files under `out`."""
    del period  # an export for a period is taken as given; ingest checks dates against the period
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(
        (".ndjson", ".jsonl", ".json", ".ndjson.gz")))
    if not files:
        raise ExtractSourceError(f"no FHIR .ndjson or .json files in extract folder {folder.name}")
    out.mkdir(parents=True, exist_ok=True)
    index = _Index()
    eob_files: list[Path] = []
    for path in files:
        if _index_file(path, index):
            eob_files.append(path)
    if not index.patients:
        raise ExtractFileError(f"{folder.name}: the FHIR export has no Patient resources (the member file)")
    if not eob_files:
        raise ExtractFileError(f"{folder.name}: the FHIR export has no ExplanationOfBenefit resources")
    members, plans = _write_members(index, out)
    claims = tuple(_write_claims(path, index, out) for path in eob_files)
    member_source = sorted(index.patient_files)[0] if len(index.patient_files) == 1 else "Patient resources"
    return Extract("fhir", ExtractFile(plans, "plans", "Coverage plans", 1),
                   ExtractFile(members, "members", member_source, 1), claims)


# -- reading resources ---------------------------------------------------------------------
def _resources(path: Path) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(position, resource) per NDJSON line or Bundle entry; None for a line that is not JSON."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        if path.name.endswith((".ndjson", ".jsonl", ".ndjson.gz")):
            with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        yield number, _loads(line)
            return
        with path.open(encoding="utf-8") as handle:
            document = _loads(handle.read())
    except UnicodeDecodeError:
        raise ExtractFileError(f"{path.name}: the file is not UTF-8 text") from None
    except (OSError, EOFError) as exc:
        raise ExtractFileError(f"{path.name}: unreadable ({type(exc).__name__})") from None
    if document is None:
        raise ExtractFileError(f"{path.name}: not valid JSON")
    if document.get("resourceType") == "Bundle":
        for number, entry in enumerate(document.get("entry") or [], start=1):
            resource = entry.get("resource")
            if isinstance(resource, dict):
                if entry.get("fullUrl"):
                    resource = {**resource, "_fullUrl": entry["fullUrl"]}
                yield number, resource
        return
    yield 1, document


def _loads(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text, parse_float=Decimal)
    except (json.JSONDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _index_file(path: Path, index: _Index) -> bool:
    """Index supporting resources; True when the file holds EOBs (or lines that are not JSON)."""
    claims = False
    for _, resource in _resources(path):
        if resource is None:
            claims = True
            continue
        kind = resource.get("resourceType")
        if kind == "ExplanationOfBenefit":
            claims = True
            continue
        if kind not in ("Patient", "Coverage", "Organization", "Practitioner"):
            continue
        slim = _slim(resource)
        for key in _keys(resource):
            index.resources[key] = slim
        if kind == "Patient":
            index.patients.append(f"Patient/{resource.get('id')}")
            index.patient_files.add(path.name)
        elif kind == "Coverage":
            beneficiary = (resource.get("beneficiary") or {}).get("reference")
            if beneficiary:
                key = "/".join(beneficiary.split("/")[-2:])
                current = index.coverage_of.get(key)
                if current is None or _coverage_rank(slim) > _coverage_rank(current):
                    index.coverage_of[key] = slim
    return claims


def _keys(resource: dict[str, Any]) -> list[str]:
    keys = [f"{resource.get('resourceType')}/{resource.get('id')}"]
    if resource.get("_fullUrl"):
        keys.append(resource["_fullUrl"])
    return keys


def _slim(resource: dict[str, Any]) -> dict[str, Any]:
    """Only what a statement needs from a supporting resource."""
    kind = resource["resourceType"]
    if kind == "Patient":
        return {"kind": kind, "id": resource.get("id"), "identifier": resource.get("identifier") or [],
                "name": _human_name(resource.get("name") or []), "birthDate": resource.get("birthDate", ""),
                "address": _address(resource.get("address") or []), "telecom": resource.get("telecom") or [],
                "language": _language(resource)}
    if kind == "Coverage":
        classes = {(_code(c.get("type")) or ""): c for c in resource.get("class") or []}
        return {"kind": kind, "id": resource.get("id"), "identifier": resource.get("identifier") or [],
                "status": resource.get("status", ""), "relationship": _code(resource.get("relationship")),
                "plan": classes.get("plan", {}), "group": classes.get("group", {}),
                "payor": (resource.get("payor") or [{}])[0],
                "start": (resource.get("period") or {}).get("start", "")}
    if kind == "Organization":
        return {"kind": kind, "name": resource.get("name", ""), "npi": _npi(resource)}
    name = _human_name(resource.get("name") or [])
    return {"kind": kind, "name": " ".join(p for p in (name[0], name[1]) if p), "npi": _npi(resource)}


def _coverage_rank(coverage: dict[str, Any]) -> tuple[bool, str]:
    return coverage.get("status") == "active", str(coverage.get("start", ""))


def _code(concept: dict[str, Any] | None) -> str:
    for coding in (concept or {}).get("coding") or []:
        if coding.get("code"):
            return str(coding["code"])
    return ""


def _codings(concept: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((concept or {}).get("coding") or [])


def _human_name(names: list[dict[str, Any]]) -> tuple[str, str]:
    chosen = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    given = " ".join(chosen.get("given") or [])
    return given, chosen.get("family", "") or chosen.get("text", "")


def _address(addresses: list[dict[str, Any]]) -> dict[str, Any]:
    ranked = sorted(addresses, key=lambda a: (a.get("use") not in ("home", None), a.get("type") == "postal"))
    return ranked[0] if ranked else {}


_TRADITIONAL_CHINESE = frozenset({"zh-hant", "zh-tw", "zh-hk", "zh-mo"})
"""BCP 47 tags a FHIR Patient may give for Chinese read in traditional characters."""


def _language(patient: dict[str, Any]) -> str:
    """The preferred language as the member file codes it: the language alone ("es-US" → "es"),
    but Chinese keeps its script ("zh-Hant", whose statements are written in traditional
    characters)."""
    for item in patient.get("communication") or []:
        if item.get("preferred"):
            code = _code(item.get("language")).strip().replace("_", "-")
            return "zh-Hant" if code.lower() in _TRADITIONAL_CHINESE else code[:2].lower()
    return ""


def _npi(resource: dict[str, Any]) -> str:
    for identifier in resource.get("identifier") or []:
        if identifier.get("system") == NPI_SYSTEM or _code(identifier.get("type")) == "NPI":
            return str(identifier.get("value", ""))
    return ""


# -- members and plans ---------------------------------------------------------------------
def member_id_of(patient: dict[str, Any], coverage: dict[str, Any] | None) -> str:
    """The member number: Patient or Coverage identifier of type MB, else subscriberId, else id."""
    for resource in (patient, coverage or {}):
        for identifier in resource.get("identifier") or []:
            if _code(identifier.get("type")) == "MB" and identifier.get("value"):
                return str(identifier["value"])
    return str(patient.get("id", ""))


def _line_of_business(coverage: dict[str, Any] | None) -> str:
    names = " ".join(str((coverage or {}).get(k, {}).get("name", "")) for k in ("group", "plan")).upper()
    if "MEDICAID" in names:
        return "medicaid"
    if "MEDICARE" in names:
        return "medicare_advantage"
    return "commercial"


def _plan_of(coverage: dict[str, Any] | None) -> tuple[str, str]:
    coverage = coverage or {}
    plan, payor = coverage.get("plan") or {}, coverage.get("payor") or {}
    plan_id = str(plan.get("value") or "").strip() or "FHIR-PLAN"
    return plan_id, str(plan.get("name") or payor.get("display") or "Health plan")


def _write_members(index: _Index, out: Path) -> tuple[Path, Path]:
    rows: list[dict[str, str]] = []
    plans: dict[str, str] = {}
    for key in index.patients:
        patient = index.resources[key]
        coverage = index.coverage_of.get(key)
        plan_id, plan_name = _plan_of(coverage)
        plans.setdefault(plan_id, plan_name)
        address = patient["address"]
        lines = address.get("line") or []
        email = sorted((t for t in patient["telecom"] if t.get("system") == "email"),
                       key=lambda t: t.get("rank", 99))
        rows.append({
            "member_id": member_id_of(patient, coverage), "first_name": patient["name"][0],
            "last_name": patient["name"][1], "date_of_birth": patient["birthDate"],
            "address_line1": lines[0] if lines else "", "address_line2": " ".join(lines[1:]),
            "city": address.get("city", ""), "state": address.get("state", ""),
            "postal_code": address.get("postalCode", ""), "email": email[0].get("value", "") if email else "",
            "language": patient["language"], "plan_id": plan_id,
            "group_number": str(((coverage or {}).get("group") or {}).get("value", "")),
            "line_of_business": _line_of_business(coverage),
            "edelivery_consent": "N",  # FHIR carries no e-delivery consent: paper, unless a feed says so
            "ytd_deductible": "0.00", "ytd_out_of_pocket": "0.00", "_ref": key,
        })
    members_path, plans_path = out / "members.parquet", out / "plans.parquet"
    _write_rows(members_path, MEMBER_FIELDS, rows)
    _write_rows(plans_path, PLAN_FIELDS, [
        {"plan_id": p, "plan_name": n, "brand": "default", "deductible_limit": "", "out_of_pocket_limit": ""}
        for p, n in sorted(plans.items())])
    return members_path, plans_path


def _write_rows(path: Path, names: list[str], rows: list[dict[str, str]]) -> None:
    schema = pa.schema([(n, pa.string()) for n in names])
    pq.write_table(pa.table({n: pa.array([str(r.get(n, "")) for r in rows], pa.string()) for n in names},
                            schema=schema), path)


# -- claims --------------------------------------------------------------------------------
def _write_claims(path: Path, index: _Index, out: Path) -> ExtractFile:
    target = out / f"claims_fhir_{path.name.split('.')[0]}.parquet"
    schema = pa.schema([(n, pa.string()) for n in CLAIM_FIELDS])
    pending: list[dict[str, str]] = []
    with pq.ParquetWriter(target, schema) as writer:
        for position, resource in _resources(path):
            if resource is None:
                pending.append(_problem_row(f"{path.name} line {position}", "(resource)", "not valid JSON"))
            elif resource.get("resourceType") == "ExplanationOfBenefit":
                pending.extend(eob_rows(resource, index, position))
            if len(pending) >= BATCH_ROWS:
                writer.write_table(_table(pending, schema))
                pending = []
        writer.write_table(_table(pending, schema))
    return ExtractFile(target, "claims", path.name, 1)


def _table(rows: list[dict[str, str]], schema: pa.Schema) -> pa.Table:
    return pa.table({n: pa.array([r.get(n, "") for r in rows], pa.string()) for n in schema.names},
                    schema=schema)


def _problem_row(ref: str, field_name: str, reason: str) -> dict[str, str]:
    return {"_ref": ref, "_field": field_name, "_reason": reason}


def eob_rows(eob: dict[str, Any], index: _Index, position: int) -> list[dict[str, str]]:
    """Canonical rows (strings) for one ExplanationOfBenefit: one per item, or one from totals."""
    ref = f"ExplanationOfBenefit/{eob.get('id', '?')}"
    patient_ref = (eob.get("patient") or {}).get("reference")
    patient = index.get(patient_ref)
    coverage_ref = next((i.get("coverage", {}).get("reference") for i in eob.get("insurance") or []
                         if i.get("focal")), None)
    coverage = index.get(coverage_ref) or (index.coverage_of.get("/".join(patient_ref.split("/")[-2:]))
                                           if patient_ref else None)
    header = _header(eob, index, patient, coverage)
    diagnoses = _diagnoses(eob)
    problem: tuple[str, str] | None = None
    if patient is None:
        problem = ("member_id", "the EOB's patient reference does not resolve to a Patient in the export")
    elif not header["network"]:
        problem = ("network", "the EOB states no network status (billingnetworkstatus or in/out of network)")
    items = [i for i in eob.get("item") or [] if isinstance(i, dict)]
    with_money = [i for i in items if _amounts(i.get("adjudication") or [])]
    if not with_money:  # amounts only at claim level: one line for the claim
        first = items[0] if items else {}
        sources = [(1, first, _amounts(eob.get("total") or []), f"{ref} totals (resource {position})")]
    else:
        sources = [(int(i.get("sequence") or n), i, _amounts(i.get("adjudication") or []),
                    f"{ref} item {i.get('sequence', n)} (resource {position})")
                   for n, i in enumerate(with_money, start=1)]
    reversed_pairs = _reversals(sources)
    rows = []
    for sequence, item, amounts, item_ref in sources:
        row = {**header, "line_no": str(sequence), "_ref": item_ref}
        row.update(_item_fields(item, eob, amounts, header))
        row.update(_sensitivity_codes(item, diagnoses))
        if sequence in reversed_pairs:
            row["_field"], row["_reason"] = "(item)", reversed_pairs[sequence]
        elif problem is not None:
            row["_field"], row["_reason"] = problem
        rows.append(row)
    if not rows:
        rows.append({**header, "_ref": f"{ref} (resource {position})", "_field": "(item)",
                     "_reason": "the EOB has no items and no totals"})
    return rows


def _header(eob: dict[str, Any], index: _Index, patient: dict[str, Any] | None,
            coverage: dict[str, Any] | None) -> dict[str, str]:
    provider = index.get((eob.get("provider") or {}).get("reference")) or {}
    received = next((str(s.get("timingDate", "")) for s in eob.get("supportingInfo") or []
                     if _code(s.get("category")) == "clmrecvddate"), "")
    return {
        "claim_id": _claim_id(eob),
        "member_id": member_id_of(patient, coverage) if patient else "",
        "patient_id": str((patient or {}).get("id") or ""),
        "patient_name": " ".join(p for p in (patient or {}).get("name", ("", "")) if p),
        "patient_relationship": RELATIONSHIPS.get((coverage or {}).get("relationship", ""), "other")
        if coverage else "",
        "provider_name": provider.get("name") or (eob.get("provider") or {}).get("display", ""),
        "provider_npi": provider.get("npi", ""),
        "network": _network(eob),
        "received_date": received or str(eob.get("created", ""))[:10],
        "claim_type": _code(eob.get("type")),
    }


def _claim_id(eob: dict[str, Any]) -> str:
    identifiers = eob.get("identifier") or []
    for identifier in identifiers:
        if _code(identifier.get("type")) in ("uc", "uniqueclaimid") and identifier.get("value"):
            return str(identifier["value"])
    return str((identifiers[0].get("value") if identifiers else None) or eob.get("id", ""))


def _network(eob: dict[str, Any]) -> str:
    """in/out from the billing network status (STU2), the STU1 innetwork/outofnetwork
    categories, or the billing provider's contracting status."""
    found: list[str] = []
    for adjudication in eob.get("adjudication") or []:
        if _code(adjudication.get("category")) == "billingnetworkstatus":
            found.append(_code(adjudication.get("reason")))
    for entry in [*(eob.get("total") or []), *[a for i in eob.get("item") or []
                                                for a in i.get("adjudication") or []]]:
        found.extend(c.get("code", "") for c in _codings(entry.get("category")))
    for info in eob.get("supportingInfo") or []:
        if _code(info.get("category")) == "billingnetworkcontractingstatus":
            status = _code(info.get("code"))
            found.append({"contracted": "innetwork", "noncontracted": "outofnetwork"}.get(status, ""))
    if "outofnetwork" in found:
        return "out"
    if "innetwork" in found:
        return "in"
    return ""


def _amounts(adjudications: list[dict[str, Any]]) -> dict[str, Decimal]:
    amounts: dict[str, Decimal] = {}
    for adjudication in adjudications:
        value = (adjudication.get("amount") or {}).get("value")
        if value is None:
            continue
        for coding in _codings(adjudication.get("category")):
            code = coding.get("code")
            if code in MONEY_CATEGORIES:
                try:
                    amounts[code] = amounts.get(code, Decimal(0)) + Decimal(str(value))
                except InvalidOperation:
                    continue
    return amounts


def _reversals(sources: list[tuple[int, dict[str, Any], dict[str, Decimal], str]]) -> dict[int, str]:
    """Items that exactly cancel an earlier item of the same claim (same code, negated amounts)."""
    found: dict[int, str] = {}
    for position, (sequence, item, amounts, _) in enumerate(sources):
        if not amounts or not any(v < 0 for v in amounts.values()):
            continue
        for earlier_sequence, earlier, earlier_amounts, _ in sources[:position]:
            if earlier_sequence in found or _service_code(earlier)[0] != _service_code(item)[0]:
                continue
            if earlier_amounts and all(earlier_amounts.get(k, Decimal(0)) == -v for k, v in amounts.items()):
                found[earlier_sequence] = REVERSED
                found[sequence] = REVERSAL
                break
    return found


def _service_code(item: dict[str, Any]) -> tuple[str, str]:
    for concept in (item.get("productOrService"), item.get("revenue")):
        for coding in _codings(concept):
            system = str(coding.get("system", "")).lower()
            if "data-absent" in system or not coding.get("code"):
                continue
            kind = next((v for k, v in CODE_SYSTEMS.items() if k in system), "other")
            if "ama-assn" in system:
                kind = "cpt"
            return str(coding["code"]), kind
    return "", ""


def _same_system(coding: dict[str, Any], system: str) -> bool:
    """Whether a coding is of `system`, written with http or https, with or without a final slash."""
    def bare(url: str) -> str:
        return url.strip().rstrip("/").split("://", 1)[-1].lower()

    return bare(str(coding.get("system") or "")) == bare(system)


def _diagnoses(eob: dict[str, Any]) -> dict[int, list[str]]:
    """The claim's ICD-10-CM codes by diagnosis sequence (codes of other systems are not read:
    the sensitive-services list is of ICD-10-CM codes)."""
    found: dict[int, list[str]] = {}
    for number, diagnosis in enumerate(eob.get("diagnosis") or [], start=1):
        codes = [str(c["code"]).strip() for c in _codings(diagnosis.get("diagnosisCodeableConcept"))
                 if _same_system(c, ICD10CM_SYSTEM) and str(c.get("code") or "").strip()]
        if codes:
            found[_sequence(diagnosis.get("sequence"), number)] = codes
    return found


def _sequence(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _sensitivity_codes(item: dict[str, Any], diagnoses: dict[int, list[str]]) -> dict[str, str]:
    """The item's diagnosis, revenue and place-of-service codes, matched against the
    sensitive-services list (never printed); empty where the EOB has none."""
    pointers = item.get("diagnosisSequence")
    if pointers:
        chosen = [code for pointer in pointers for code in diagnoses.get(_sequence(pointer, 0), [])]
    else:
        chosen = [code for codes in diagnoses.values() for code in codes]
    return {"diagnosis_codes": ";".join(dict.fromkeys(chosen)),
            "revenue_code": _revenue_code(item.get("revenue")),
            "place_of_service": next((str(c.get("code") or "").strip()
                                      for c in _codings(item.get("locationCodeableConcept"))
                                      if _same_system(c, PLACE_SYSTEM)), "")}


def _revenue_code(concept: dict[str, Any] | None) -> str:
    """A NUBC revenue code as given (ingest judges its form), else any coding's 3–4 digit code."""
    codings = _codings(concept)
    for coding in codings:
        if _same_system(coding, REVENUE_SYSTEM) and str(coding.get("code") or "").strip():
            return str(coding["code"]).strip()
    return next((code for code in (str(c.get("code") or "").strip() for c in codings)
                 if code.isdigit() and 3 <= len(code) <= 4), "")


def _item_fields(item: dict[str, Any], eob: dict[str, Any], amounts: dict[str, Decimal],
                 header: dict[str, str]) -> dict[str, str]:
    billed = amounts.get("submitted", Decimal(0))
    if "discount" in amounts:
        discount = amounts["discount"]
    elif "eligible" in amounts:
        discount = billed - amounts["eligible"]
    else:
        discount = Decimal(0)
    if "paidtoprovider" in amounts or "paidtopatient" in amounts:
        paid = amounts.get("paidtoprovider", Decimal(0)) + amounts.get("paidtopatient", Decimal(0))
    else:
        paid = amounts.get("benefit", Decimal(0))
    money = {"billed": billed, "discount": discount, "plan_paid": paid,
             "other_payer_paid": amounts.get("priorpayerpaid", Decimal(0)),
             "deductible": amounts.get("deductible", Decimal(0)), "copay": amounts.get("copay", Decimal(0)),
             "coinsurance": amounts.get("coinsurance", Decimal(0)),
             "not_covered": amounts.get("noncovered", Decimal(0))}
    code, system = _service_code(item)
    decided = adjudication_fields(item, eob, amounts, money)  # a pended item keeps billed alone
    described = str((item.get("productOrService") or {}).get("text") or "")
    service = (item.get("servicedDate") or (item.get("servicedPeriod") or {}).get("start")
               or (eob.get("billablePeriod") or {}).get("start") or "")
    return {
        "service_date": str(service)[:10], "service_code": code, "service_code_system": system,
        "service_description": described or LAY_DESCRIPTIONS.get(header["claim_type"], "Health care service"),
        **decided, **{k: money_text(v) for k, v in money.items()},
    }
