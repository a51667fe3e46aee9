"""The sensitive-services code list: which codes reveal a sensitive service, by category."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.sensitive_services import SensitiveServicesError, sensitive_services

LIST = sensitive_services()


@pytest.mark.parametrize(("codes", "expected"), [
    # procedures (CPT / HCPCS): inclusive ranges of codes of one length
    ({"procedure": "59840"}, {"reproductive_sexual_health"}),
    ({"procedure": "59857"}, {"reproductive_sexual_health"}),
    ({"procedure": "59858"}, set()),
    ({"procedure": "J7298"}, {"reproductive_sexual_health"}),
    ({"procedure": "90837"}, {"behavioral_health"}),
    ({"procedure": "H0015"}, {"substance_use"}),
    ({"procedure": "99213"}, set()),                      # an office visit
    ({"procedure": "9084"}, set()),                       # four characters never match a 5-character range
    # diagnoses (ICD-10-CM): prefixes, with or without the dot
    ({"diagnoses": ["F32.9"]}, {"behavioral_health"}),
    ({"diagnoses": ["F10.20"]}, {"substance_use"}),       # not behavioural health as well
    ({"diagnoses": ["f1920"]}, {"substance_use"}),
    ({"diagnoses": ["F64.0"]}, {"gender_affirming"}),
    ({"diagnoses": ["Z87.890"]}, {"gender_affirming"}),
    ({"diagnoses": ["Z87.891"]}, set()),                  # history of nicotine dependence
    ({"diagnoses": ["Z04.41"]}, {"intimate_partner_violence"}),
    ({"diagnoses": ["Z04.3"]}, set()),
    ({"diagnoses": ["A54.00"]}, {"reproductive_sexual_health"}),
    ({"diagnoses": ["J45.909", "O03.9"]}, {"reproductive_sexual_health"}),  # any of the claim's
    # revenue and place of service: leading zeros may be left off
    ({"revenue": "914"}, {"behavioral_health"}),
    ({"revenue": "0944"}, {"substance_use"}),
    ({"place_of_service": "57"}, {"substance_use"}),
    ({"place_of_service": "11"}, set()),                  # an office
    # several codes, several categories
    ({"procedure": "90837", "diagnoses": ["F10.20"]}, {"behavioral_health", "substance_use"}),
])
def test_a_code_falls_in_its_categories(codes: dict, expected: set[str]) -> None:  # type: ignore[type-arg]
    assert LIST.categories(**codes) == expected


def test_the_shipped_list_names_the_five_categories_the_state_laws_name() -> None:
    assert LIST.category_names == ["behavioral_health", "gender_affirming", "intimate_partner_violence",
                                   "reproductive_sexual_health", "substance_use"]
    assert LIST.version == "2026.12"


@pytest.mark.parametrize(("row", "message"), [
    ("2026.12,behavioral_health,x-ray,90785,90899,bad", "row 2, field system: 'x-ray'"),
    ("2026.12,Behavioural Health,procedure,90785,90899,bad", "row 2, field category"),
    ("2026.12,behavioral_health,procedure,9078,90899,bad", "row 2, field first: '9078'"),
    ("2026.12,behavioral_health,diagnosis,F10,F19.2,bad", "row 2, fields first/last"),
    ("2026.12,behavioral_health,procedure,90899,90785,bad", "row 2, fields first/last"),
    ("2026.12,behavioral_health,diagnosis,F3,F39,bad", "row 2, field first: 'F3'"),
    ("2026.12,behavioral_health,revenue,09000,0919,bad", "row 2, field first: '09000'"),
])
def test_a_malformed_row_is_refused_naming_the_file_row_and_field(
        tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "sensitive_services.csv"
    path.write_text("list_version,category,system,first,last,description\n" + row + "\n", encoding="utf-8")
    with pytest.raises(SensitiveServicesError, match=f"sensitive_services.csv: {message}"):
        sensitive_services(path)


def test_one_version_per_list(tmp_path: Path) -> None:
    path = tmp_path / "sensitive_services.csv"
    path.write_text("list_version,category,system,first,last,description\n"
                    "2026.12,substance_use,procedure,H0001,H0020,a\n"
                    "2027.01,substance_use,procedure,H0047,H0050,b\n", encoding="utf-8")
    with pytest.raises(SensitiveServicesError, match="several list versions"):
        sensitive_services(path)
