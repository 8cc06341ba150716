"""What a station offers: one controlled vocabulary, modelled on OpenStreetMap tags.

The codes are stable API values (stored on stations, used as nearby-search filters and as the
services a visit records). `osm_tags` are the OpenStreetMap tags that say the same thing, so
stations can be exported to or matched against OSM; an empty tuple means OSM has no established
tag for it (a microwave for heating lunch, legal aid, a free breakfast).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Amenity:
    code: str
    osm_tags: tuple[str, ...]
    label_zh: str
    label_en: str


AMENITIES: tuple[Amenity, ...] = (
    # "渴了有水喝"
    Amenity("drinking_water", ("amenity=drinking_water",), "饮水", "Drinking water"),
    Amenity("toilets", ("amenity=toilets",), "卫生间", "Toilets"),
    # "没电可充电": OSM's tag for charging phones and other small devices (not cars).
    Amenity("phone_charging", ("amenity=device_charging_station",), "手机充电", "Phone charging"),
    # "饭凉能加热"
    Amenity("microwave", (), "微波炉（热饭）", "Microwave for heating food"),
    Amenity("refrigerator", (), "冰箱", "Refrigerator"),
    # "累了能歇脚"
    Amenity("seating", ("amenity=bench",), "休息区", "Seating / rest area"),
    # "应急有药品"
    Amenity("first_aid_kit", ("emergency=first_aid_kit",), "应急药箱", "First-aid kit"),
    Amenity(
        "nursing_room",
        ("baby_feeding=yes", "changing_table=yes"),
        "爱心妈咪小屋",
        "Nursing room",
    ),
    Amenity("wifi", ("internet_access=wlan",), "无线网络", "Wi-Fi"),
    Amenity("library", ("amenity=library",), "图书角", "Library / reading corner"),
    Amenity("gym", ("leisure=fitness_centre",), "健身", "Gym"),
    Amenity("legal_aid", (), "法律援助", "Legal aid"),
    Amenity("counselling", ("healthcare=counselling",), "心理咨询", "Counselling"),
    Amenity("breakfast", (), "爱心早餐", "Free breakfast"),
    Amenity("air_conditioning", ("air_conditioning=yes",), "空调", "Air conditioning"),
)

BY_CODE: dict[str, Amenity] = {a.code: a for a in AMENITIES}
CODES: tuple[str, ...] = tuple(BY_CODE)


def unknown(codes: list[str]) -> list[str]:
    """The codes that are not in the vocabulary, in the order given."""
    return [code for code in codes if code not in BY_CODE]


def canonical(codes: list[str]) -> list[str]:
    """Deduplicated, in vocabulary order: the same set always stores and compares the same."""
    wanted = set(codes)
    return [code for code in CODES if code in wanted]
