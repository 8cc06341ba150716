"""What a visitor used at a station: one vocabulary, each service with its Chinese label.

The love-station slogan names most of them: 累了能歇脚 (rest)、渴了有水喝 (drinking water)、
没电可充电 (phone charging)、饭凉能加热 (heating food)、应急有药品 (first aid); worker homes
add reading, legal consultation and counselling; some stations hand out breakfast.
"""

from __future__ import annotations

from gonghui_shared.vocabulary import LabelledEnum


class VisitService(LabelledEnum):
    """服务项目: a service used during a visit (codes in the API, labels for people)."""

    DRINKING_WATER = ("drinking_water", "喝水", "饮水", "喝水", "热水", "water")
    PHONE_CHARGING = ("phone_charging", "充电", "手机充电", "charging")
    REST = ("rest", "休息", "歇脚", "休憩")
    HEATING_FOOD = ("heating_food", "热饭", "加热饭菜", "微波炉热饭")
    BREAKFAST = ("breakfast", "爱心早餐", "早餐")
    FIRST_AID = ("first_aid", "应急药品", "药品", "急救")
    TOILET = ("toilet", "如厕", "厕所", "卫生间", "toilets")
    LEGAL_CONSULT = ("legal_consult", "法律咨询", "法律援助", "legal_aid")
    COUNSELLING = ("counselling", "心理咨询", "心理疏导", "counseling")
    READING = ("reading", "阅读", "读书", "看书")
    OTHER = ("other", "其他", "其它")


SERVICE_ORDER: dict[str, int] = {service.value: i for i, service in enumerate(VisitService)}
