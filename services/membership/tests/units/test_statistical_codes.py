"""Tests of the statistical division codes (统计用区划代码) of administrative units."""

from collections import Counter

import pytest

from membership.units.statistical_codes import (
    UnitRow,
    UnitsFileError,
    generate_county,
    parent_code,
    read_units_csv,
    unit_level,
    validate_region_code,
    write_units_csv,
)


@pytest.mark.parametrize(
    ("code", "level", "parent"),
    [
        ("530000000000", "province", None),
        ("530900000000", "city", "530000000000"),
        ("530921000000", "county", "530900000000"),
        ("530921100000", "township", "530921000000"),
        ("530921100001", "village", "530921100000"),
        ("530921100200", "village", "530921100000"),
        ("441900003000", "township", "441900000000"),  # 东莞: towns directly under the city
    ],
)
def test_levels_and_parents(code, level, parent):
    assert unit_level(code) == level
    assert parent_code(code) == parent


@pytest.mark.parametrize(
    "code",
    [
        "",
        "53092100000",
        "5309210000000",
        "53092100000A",
        "000000000000",
        None,
        "５３０９２１０００００１",
    ],
)
def test_invalid_codes(code):
    with pytest.raises(ValueError, match="12 digits|province"):
        validate_region_code(code)
    with pytest.raises(ValueError):
        unit_level(code)


def test_validate_returns_the_code():
    assert validate_region_code("530921000000") == "530921000000"


NATIONAL = """统计用区划代码,城乡分类代码,名称
530921000000,,凤庆县
530921100000,,凤山镇
530921100001,111,东城社区
530921100200,220,京竹林村
530921101000,,鲁史镇
530921101201,210,金鸡村
"""


def test_national_layout_without_coordinates():
    units = read_units_csv(NATIONAL.encode("utf-8"))

    assert [u.code for u in units] == [
        "530921000000",
        "530921100000",
        "530921100001",
        "530921100200",
        "530921101000",
        "530921101201",
    ]
    county, township, community, village = units[:4]
    assert county == UnitRow("530921000000", "凤庆县", "county", "530900000000")
    assert township.level == "township"
    assert township.parent_code == "530921000000"
    assert township.urban_rural_code is None
    assert township.urban is None
    assert (community.name, community.urban_rural_code, community.urban) == (
        "东城社区",
        "111",
        True,
    )
    assert (village.name, village.urban_rural_code, village.urban) == ("京竹林村", "220", False)
    assert village.parent_code == "530921100000"
    assert units[5].urban is False
    assert all(u.lon is None and u.lat is None for u in units)


def test_coordinates_bom_and_gb18030():
    text = (
        "统计用区划代码,城乡分类代码,名称,经度,纬度\n"
        "530921100001,111,东城社区,99.9281,24.5802\n"
        "530921100200,220,京竹林村,,\n"
    )

    for data in (text.encode("utf-8-sig"), text.encode("gb18030")):
        units = read_units_csv(data)

        assert (units[0].lon, units[0].lat) == (99.9281, 24.5802)
        assert (units[1].lon, units[1].lat) == (None, None)


def test_header_tolerates_spaces_and_blank_lines():
    data = "\n 统计用区划代码 , 名称 \n\n530921000000 , 凤庆县 \n".encode()

    units = read_units_csv(data)

    assert [(u.code, u.name, u.urban_rural_code) for u in units] == [
        ("530921000000", "凤庆县", None)
    ]


@pytest.mark.parametrize(
    ("body", "line", "fragment"),
    [
        ("53092100000,,短代码\n", 3, "12 digits"),
        ("53092110000X,,坏代码\n", 3, "12 digits"),
        ("530921100001,111,\n", 3, "no name"),
        ("530921100001,999,某社区\n", 3, "城乡分类代码"),
        ("530921100000,111,凤山镇\n", 3, "only given for villages"),
        ("530921000000,,凤庆县\n", 3, "already appears on line 2"),
        ("530921100001,111,东城社区\n530921100002,220,\n", 4, "no name"),
    ],
)
def test_bad_rows_name_their_line(body, line, fragment):
    data = ("统计用区划代码,城乡分类代码,名称\n530921000000,,凤庆县\n" + body).encode()

    with pytest.raises(UnitsFileError) as caught:
        read_units_csv(data)

    assert caught.value.line == line
    assert fragment in str(caught.value)
    assert str(caught.value).startswith(f"line {line}:")


@pytest.mark.parametrize(
    ("row", "fragment"),
    [
        ("530921100001,111,东城社区,99.9,\n", "only one of"),
        ("530921100001,111,东城社区,east,24.5\n", "not a number"),
        ("530921100001,111,东城社区,99.9,124.5\n", "out of range"),
    ],
)
def test_bad_coordinates(row, fragment):
    data = ("统计用区划代码,城乡分类代码,名称,经度,纬度\n" + row).encode()

    with pytest.raises(UnitsFileError, match=fragment) as caught:
        read_units_csv(data)

    assert caught.value.line == 2


@pytest.mark.parametrize(
    "data",
    [b"", "名称,经度\n凤庆县,99\n".encode(), "统计用区划代码,名称,经度\n".encode()],
)
def test_bad_files(data):
    with pytest.raises(UnitsFileError):
        read_units_csv(data)


def test_generated_seed_county():
    units = generate_county()

    county = units[0]
    townships = [u for u in units if u.level == "township"]
    villages = [u for u in units if u.level == "village"]
    assert (county.code, county.name, county.level) == ("530921000000", "凤庆县", "county")
    assert len(units) == 1 + 13 + 189
    assert len(townships) == 13
    assert len(villages) == 189
    assert [t.code for t in townships] == [f"530921{n:03d}000" for n in range(1, 14)]
    assert townships[0].name == "凤山镇"
    assert all(t.parent_code == county.code for t in townships)
    township_codes = {t.code for t in townships}
    assert all(v.parent_code in township_codes for v in villages)
    assert all(
        v.code.startswith("530921") and v.code[:9] + "000" == v.parent_code for v in villages
    )
    assert len({u.code for u in units}) == len(units)
    assert len({v.name for v in villages}) == 189
    per_township = Counter(v.parent_code for v in villages)
    assert sorted(per_township.values()) == [14] * 6 + [15] * 7
    communities = [v for v in villages if v.urban_rural_code == "111"]
    assert [c.name for c in communities] == ["东城社区", "西城社区", "南城社区", "北城社区"]
    assert all(c.urban is True and c.parent_code == townships[0].code for c in communities)
    assert all(
        v.urban_rural_code == "220" and v.urban is False and v.name.endswith("村")
        for v in villages[4:]
    )
    assert all(99 < u.lon < 101 and 24 < u.lat < 25 for u in units)


def test_generate_county_is_deterministic_and_parametrised():
    assert generate_county() == generate_county()

    units = generate_county("110105000000", "朝阳区", townships=3, villages=10, communities=2)

    assert [u.level for u in units].count("township") == 3
    assert [u.level for u in units].count("village") == 10
    assert all(u.code.startswith("110105") for u in units)
    assert all(u.lon is None for u in units)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"county_code": "530900000000"},
        {"county_code": "530921001000"},
        {"townships": 0},
        {"townships": 1, "villages": 1000},
        {"villages": 3, "communities": 4},
    ],
)
def test_generate_county_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        generate_county(**kwargs)


def test_write_then_read_round_trip():
    units = generate_county()

    data = write_units_csv(units)

    assert data.startswith("\ufeff统计用区划代码,城乡分类代码,名称,经度,纬度".encode())
    assert read_units_csv(data) == units


def test_write_without_coordinates_uses_the_three_national_columns():
    units = generate_county(coordinates=False)

    data = write_units_csv(units)

    assert data.decode("utf-8-sig").splitlines()[0] == "统计用区划代码,城乡分类代码,名称"
    assert read_units_csv(data) == units
