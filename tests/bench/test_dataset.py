"""The generated province: every county's people pass the checks a roster import makes."""

from __future__ import annotations

from bench.dataset import FULL_COUNTIES, county_code, person
from gonghui_shared.identity import normalize_phone, parse_id_number


def test_every_county_of_a_full_province_has_a_real_code_and_valid_people() -> None:
    codes = [county_code(index) for index in range(FULL_COUNTIES)]
    assert len(set(codes)) == FULL_COUNTIES
    for index, code in enumerate(codes):
        for n in (index * 10_000, index * 10_000 + 9_999):
            row = person(n, code)
            assert parse_id_number(row["id_number"]).region_code == code[:6]
            normalize_phone(row["phone"])
