"""The reference list of administrative units: 统计用区划代码 (statistical division codes).

A 12-digit code nests five levels: province (省, 2 digits), city (市, 2), county
(县, 2), township (乡镇/街道, 3) and village (村/社区, 3); trailing zeros mark the
level. Village-level rows also carry a 城乡分类代码 (urban-rural classification): codes
starting with 1 are urban (社区-like), 2 rural (村). The file layout is that of the
national list published by the statistics bureau: ``统计用区划代码,城乡分类代码,名称``,
optionally followed by ``经度,纬度`` (WGS-84).
"""

from __future__ import annotations

import csv
import io
import math
import random
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

PROVINCE = "province"
CITY = "city"
COUNTY = "county"
TOWNSHIP = "township"
VILLAGE = "village"

# 城乡分类代码 of village-level units.
URBAN_RURAL_CODES: dict[str, str] = {
    "111": "主城区",
    "112": "城乡结合区",
    "121": "镇中心区",
    "122": "镇乡结合区",
    "123": "特殊区域",
    "210": "乡中心区",
    "220": "村庄",
}

HEADER_CODE = "统计用区划代码"
HEADER_URBAN_RURAL = "城乡分类代码"
HEADER_NAME = "名称"
HEADER_LON = "经度"
HEADER_LAT = "纬度"

_MAX_NAME = 100


class UnitsFileError(ValueError):
    """A units file cannot be read; ``line`` is the 1-based line of the problem, if any."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class UnitRow:
    """One administrative unit of the statistical division code list."""

    code: str
    name: str
    level: str
    parent_code: str | None
    urban_rural_code: str | None = None
    urban: bool | None = None
    lon: float | None = None
    lat: float | None = None


def validate_region_code(code: str) -> str:
    """Return the code if it is a 12-digit statistical division code, else raise ValueError."""
    if not isinstance(code, str) or len(code) != 12 or not code.isascii() or not code.isdigit():
        raise ValueError(f"a statistical division code has 12 digits, got {code!r}")
    if code[:2] == "00":
        raise ValueError(f"{code!r} has no province part")
    return code


def unit_level(code: str) -> str:
    """The level of a unit: province, city, county, township or village."""
    validate_region_code(code)
    if code[2:] == "0" * 10:
        return PROVINCE
    if code[4:] == "0" * 8:
        return CITY
    if code[6:] == "0" * 6:
        return COUNTY
    if code[9:] == "000":
        return TOWNSHIP
    return VILLAGE


def parent_code(code: str) -> str | None:
    """The code of the enclosing unit, or None for a province.

    Structural: a township directly under a city without counties (东莞 441900…)
    gets the city code, which is what the national list does too.
    """
    level = unit_level(code)
    if level == PROVINCE:
        return None
    if level == CITY:
        return code[:2] + "0" * 10
    if level == COUNTY:
        return code[:4] + "0" * 8
    if level == TOWNSHIP:
        return code[:6] + "0" * 6
    return code[:9] + "000"


# Top down; each level's code fixes this many leading digits.
LEVELS = (PROVINCE, CITY, COUNTY, TOWNSHIP, VILLAGE)
_PREFIX_DIGITS = {PROVINCE: 2, CITY: 4, COUNTY: 6, TOWNSHIP: 9, VILLAGE: 12}


def region_prefix(code: str) -> str:
    """The leading digits every unit inside this one shares (530921 for 凤庆县)."""
    return code[: _PREFIX_DIGITS[unit_level(code)]]


def levels_below(level: str) -> tuple[str, ...]:
    """The levels under ``level``, top down; empty for a village."""
    return LEVELS[LEVELS.index(level) + 1 :]


def urban_from_classification(urban_rural_code: str | None) -> bool | None:
    """True for urban (1xx, 社区-like), False for rural (2xx, 村), None when unknown."""
    if not urban_rural_code:
        return None
    return urban_rural_code.startswith("1")


def _fold(text: str) -> str:
    """Header text without whitespace and full-width forms."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def _decode(data: bytes) -> str:
    """UTF-8 (with or without BOM) first, then GB18030."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise UnitsFileError("the file is neither UTF-8 nor GB18030 (GBK) text") from exc


def _coordinate(text: str, bound: float, what: str, line: int) -> float:
    """Parse a longitude or latitude within ±bound."""
    try:
        value = float(text)
    except ValueError:
        raise UnitsFileError(f"{what} {text!r} is not a number", line) from None
    if not math.isfinite(value) or abs(value) > bound:
        raise UnitsFileError(f"{what} {text!r} is out of range", line)
    return value


def read_units_csv(data: bytes) -> list[UnitRow]:
    """Parse a csv in the national layout; UnitsFileError names the line of the first problem."""
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    try:
        header: list[str] | None = None
        for cells in reader:
            if any(cell.strip() for cell in cells):
                header = [_fold(cell) for cell in cells]
                break
        if header is None:
            raise UnitsFileError("the file is empty")
        header_line = reader.line_num
        index = {name: i for i, name in reversed(list(enumerate(header)))}
        missing = [name for name in (HEADER_CODE, HEADER_NAME) if name not in index]
        if missing:
            raise UnitsFileError("missing columns: " + ", ".join(missing), header_line)
        has_lon, has_lat = HEADER_LON in index, HEADER_LAT in index
        if has_lon != has_lat:
            raise UnitsFileError(f"{HEADER_LON} and {HEADER_LAT} must come together", header_line)

        units: list[UnitRow] = []
        seen: dict[str, int] = {}
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue

            def cell(name: str, cells: list[str] = cells) -> str:
                position = index.get(name)
                return (
                    cells[position].strip()
                    if position is not None and position < len(cells)
                    else ""
                )

            code = cell(HEADER_CODE)
            try:
                level = unit_level(code)
            except ValueError as exc:
                raise UnitsFileError(str(exc), line) from None
            if code in seen:
                raise UnitsFileError(f"code {code} already appears on line {seen[code]}", line)
            seen[code] = line
            name = cell(HEADER_NAME)
            if not name:
                raise UnitsFileError(f"unit {code} has no name", line)
            if len(name) > _MAX_NAME:
                raise UnitsFileError(
                    f"name of unit {code} is longer than {_MAX_NAME} characters", line
                )
            urban_rural = cell(HEADER_URBAN_RURAL) or None
            if urban_rural is not None:
                if urban_rural not in URBAN_RURAL_CODES:
                    allowed = ", ".join(f"{k} {v}" for k, v in URBAN_RURAL_CODES.items())
                    raise UnitsFileError(
                        f"unknown {HEADER_URBAN_RURAL} {urban_rural!r}; allowed: {allowed}", line
                    )
                if level != VILLAGE:
                    raise UnitsFileError(
                        f"{HEADER_URBAN_RURAL} is only given for villages, not a {level}", line
                    )
            lon = lat = None
            if has_lon:
                lon_text, lat_text = cell(HEADER_LON), cell(HEADER_LAT)
                if bool(lon_text) != bool(lat_text):
                    raise UnitsFileError(
                        f"unit {code} has only one of {HEADER_LON}/{HEADER_LAT}", line
                    )
                if lon_text:
                    lon = _coordinate(lon_text, 180.0, HEADER_LON, line)
                    lat = _coordinate(lat_text, 90.0, HEADER_LAT, line)
            units.append(
                UnitRow(
                    code=code,
                    name=name,
                    level=level,
                    parent_code=parent_code(code),
                    urban_rural_code=urban_rural,
                    urban=urban_from_classification(urban_rural),
                    lon=lon,
                    lat=lat,
                )
            )
    except csv.Error as exc:
        raise UnitsFileError(f"malformed csv ({exc})", reader.line_num) from exc
    return units


def write_units_csv(units: Iterable[UnitRow]) -> bytes:
    """Write units in the national layout (UTF-8, BOM); ``经度,纬度`` if any unit has them."""
    units = list(units)
    with_coordinates = any(unit.lon is not None for unit in units)
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    header = [HEADER_CODE, HEADER_URBAN_RURAL, HEADER_NAME]
    if with_coordinates:
        header += [HEADER_LON, HEADER_LAT]
    writer.writerow(header)
    for unit in units:
        row = [unit.code, unit.urban_rural_code or "", unit.name]
        if with_coordinates:
            row += [
                "" if unit.lon is None else f"{unit.lon:.6f}",
                "" if unit.lat is None else f"{unit.lat:.6f}",
            ]
        writer.writerow(row)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# ---------------------------------------------------------------- synthetic county

# The 13 townships of 凤庆县 (8 镇, 5 乡); other counties get "第n镇".
_TOWNSHIP_NAMES = (
    "凤山镇",
    "鲁史镇",
    "小湾镇",
    "营盘镇",
    "三岔河镇",
    "勐佑镇",
    "雪山镇",
    "洛党镇",
    "诗礼乡",
    "新华彝族苗族乡",
    "大寺乡",
    "腰街彝族乡",
    "郭大寨彝族白族乡",
)
_COMMUNITY_NAMES = ("东城社区", "西城社区", "南城社区", "北城社区", "中山社区", "安石社区")
_VILLAGE_PREFIXES = (
    "京",
    "大",
    "小",
    "新",
    "红",
    "青",
    "安",
    "马",
    "平",
    "岔",
    "石",
    "杨",
    "团",
    "文",
)
_VILLAGE_ROOTS = (
    "竹林",
    "河",
    "山",
    "坪",
    "寨",
    "塘",
    "庄",
    "箐",
    "林",
    "田",
    "湾",
    "岭",
    "地",
    "沟",
    "桥",
    "树",
)
# Centre of 凤庆县 (WGS-84).
_FENGQING_CENTRE = (99.928, 24.580)


def _village_names() -> list[str]:
    """Distinct, plausible village names (京竹林村, 大河村, …) in a fixed order."""
    names = [f"{prefix}{root}村" for root in _VILLAGE_ROOTS for prefix in _VILLAGE_PREFIXES]
    random.Random(530921).shuffle(names)  # noqa: S311 - synthetic data, not security
    return names


def generate_county(
    county_code: str = "530921000000",
    county_name: str = "凤庆县",
    townships: int = 13,
    villages: int = 189,
    *,
    communities: int = 4,
    coordinates: bool = True,
    centre: tuple[float, float] | None = None,
) -> list[UnitRow]:
    """A synthetic but realistic county: the county, its townships, then its villages.

    Townships get codes ``county[:6] + "001".."013" + "000"``; villages are spread as
    evenly as possible (the first townships get one more) with codes
    ``township[:9] + "001"..``. The first ``communities`` villages of the first
    township (the county seat) are urban communities (社区, 城乡分类代码 111); the rest
    are villages (村, 220). With ``coordinates``, units get deterministic positions
    within about 30 km of ``centre`` (lon, lat), which defaults to the real centre of
    凤庆县 for its code; other counties without a centre get no coordinates. The
    defaults give the seed county 凤庆县: 13 townships, 189 villages and communities.
    """
    if coordinates and centre is None and county_code == "530921000000":
        centre = _FENGQING_CENTRE
    if not coordinates:
        centre = None
    if unit_level(county_code) != COUNTY:
        raise ValueError(f"{county_code} is not a county-level code")
    if not 1 <= townships <= 999:
        raise ValueError("townships must be between 1 and 999")
    if villages < 0 or -(-villages // townships) > 999:
        raise ValueError("at most 999 villages per township")
    if communities > villages:
        raise ValueError("communities cannot outnumber villages")
    rng = random.Random(int(county_code))  # noqa: S311 - synthetic data, not security

    def place() -> tuple[float | None, float | None]:
        if centre is None:
            return None, None
        return round(centre[0] + rng.uniform(-0.3, 0.3), 6), round(
            centre[1] + rng.uniform(-0.25, 0.25), 6
        )

    units = [
        UnitRow(
            code=county_code,
            name=county_name,
            level=COUNTY,
            parent_code=parent_code(county_code),
            lon=centre[0] if centre else None,
            lat=centre[1] if centre else None,
        )
    ]
    village_names = _village_names()
    per_township, extra = divmod(villages, townships)
    village_index = 0
    for t in range(1, townships + 1):
        township_code = f"{county_code[:6]}{t:03d}000"
        township_name = f"第{t}镇"
        if county_code == "530921000000" and t <= len(_TOWNSHIP_NAMES):
            township_name = _TOWNSHIP_NAMES[t - 1]
        lon, lat = place()
        units.append(UnitRow(township_code, township_name, TOWNSHIP, county_code, lon=lon, lat=lat))
        for v in range(1, per_township + (1 if t <= extra else 0) + 1):
            code = f"{township_code[:9]}{v:03d}"
            if village_index < communities:
                name = (
                    _COMMUNITY_NAMES[village_index]
                    if village_index < len(_COMMUNITY_NAMES)
                    else f"第{village_index + 1}社区"
                )
                urban_rural = "111"
            else:
                rural_index = village_index - communities
                name = (
                    village_names[rural_index]
                    if rural_index < len(village_names)
                    else f"第{rural_index + 1}村"
                )
                urban_rural = "220"
            lon, lat = place()
            units.append(
                UnitRow(
                    code=code,
                    name=name,
                    level=VILLAGE,
                    parent_code=township_code,
                    urban_rural_code=urban_rural,
                    urban=urban_from_classification(urban_rural),
                    lon=lon,
                    lat=lat,
                )
            )
            village_index += 1
    return units
