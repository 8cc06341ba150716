"""Coordinates: GCJ-02 both ways, where it applies, distances, H3 cells, walking, deep links."""

from __future__ import annotations

import math
import random
from urllib.parse import parse_qs, urlsplit

import h3
import pytest

from stations import geo
from stations.testing import point_at

# The widely published pair for Tiananmen: WGS-84 (116.397128, 39.916527) shows at
# GCJ-02 (116.403373, 39.917932) on Amap (6 decimals, i.e. to ~0.1 m).
TIANANMEN_WGS = (116.397128, 39.916527)
TIANANMEN_GCJ = (116.403373, 39.917932)


def test_known_reference_pair_within_a_metre() -> None:
    gcj = geo.wgs84_to_gcj02(*TIANANMEN_WGS)
    assert geo.distance_m(*gcj, *TIANANMEN_GCJ) < 1.0
    wgs = geo.gcj02_to_wgs84(*TIANANMEN_GCJ)
    assert geo.distance_m(*wgs, *TIANANMEN_WGS) < 1.0
    # The shift itself is a few hundred metres, so the test above is not vacuous.
    assert 400 < geo.distance_m(*TIANANMEN_WGS, *gcj) < 700


def _points_in_china(n: int, seed: int) -> list[tuple[float, float]]:
    rng = random.Random(seed)
    points: list[tuple[float, float]] = []
    while len(points) < n:
        lon, lat = rng.uniform(73.5, 134.8), rng.uniform(18.2, 53.5)
        if geo.in_mainland_china(lon, lat):
            points.append((lon, lat))
    return points


def test_round_trips_within_a_metre_over_a_thousand_points_in_china() -> None:
    worst_wgs = worst_gcj = 0.0
    for lon, lat in _points_in_china(1000, seed=20261123):
        gcj = geo.wgs84_to_gcj02(lon, lat)
        assert gcj != (lon, lat)
        back = geo.gcj02_to_wgs84(*gcj)
        worst_wgs = max(worst_wgs, geo.distance_m(lon, lat, *back))
        # and from the other side: a GCJ-02 point read off a Chinese map
        wgs = geo.gcj02_to_wgs84(lon, lat)
        worst_gcj = max(worst_gcj, geo.distance_m(lon, lat, *geo.wgs84_to_gcj02(*wgs)))
    # "within a metre" is the contract; the iteration does far better (millimetres).
    assert worst_wgs < 0.01 and worst_gcj < 0.01


def test_round_trips_on_a_regular_grid_over_jiangxi() -> None:
    for i in range(40):
        for j in range(40):
            lon, lat = 113.5 + i * 0.1, 24.5 + j * 0.1
            back = geo.gcj02_to_wgs84(*geo.wgs84_to_gcj02(lon, lat))
            assert geo.distance_m(lon, lat, *back) < 1.0


def test_one_step_inverse_would_not_be_good_enough() -> None:
    # Why the inverse iterates: subtracting the offset once leaves metres of error somewhere.
    worst = 0.0
    for lon, lat in _points_in_china(300, seed=7):
        g_lon, g_lat = geo.wgs84_to_gcj02(lon, lat)
        d_lon, d_lat = g_lon - lon, g_lat - lat
        worst = max(worst, geo.distance_m(lon, lat, g_lon - d_lon, g_lat - d_lat))
        o_lon, o_lat = geo._gcj_offset(g_lon, g_lat)
        worst = max(worst, geo.distance_m(lon, lat, g_lon - o_lon, g_lat - o_lat))
    assert worst > 0.5


@pytest.mark.parametrize(
    ("place", "lon", "lat"),
    [
        ("Paris", 2.3522, 48.8566),
        ("New York", -74.0060, 40.7128),
        ("Tokyo", 139.6917, 35.6895),
        ("Sydney", 151.2093, -33.8688),
        ("Hong Kong, Central", 114.1588, 22.2783),
        ("Hong Kong, Tsim Sha Tsui", 114.1722, 22.2975),
        ("Hong Kong airport, Lantau", 113.9185, 22.3080),
        ("Hong Kong, Sheung Shui", 114.1283, 22.5015),
        ("Macau peninsula", 113.5439, 22.1987),
        ("Macau, Cotai", 113.5650, 22.1450),
        ("Taipei", 121.5654, 25.0330),
        ("Kaohsiung", 120.3014, 22.6273),
        ("Penghu", 119.5664, 23.5655),
        ("Kinmen", 118.3171, 24.4321),
        ("Matsu, Nangan", 119.9497, 26.1597),
    ],
)
def test_no_shift_outside_mainland_china(place: str, lon: float, lat: float) -> None:
    assert not geo.in_mainland_china(lon, lat), place
    assert geo.wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert geo.gcj02_to_wgs84(lon, lat) == (lon, lat)
    assert geo.to_wgs84(lon, lat, "gcj02") == (lon, lat)


@pytest.mark.parametrize(
    ("place", "lon", "lat"),
    [
        ("Nanchang", 115.8582, 28.6820),
        ("Shenzhen, Futian", 114.0550, 22.5220),
        ("Shenzhen, Shekou", 113.9140, 22.4830),
        ("Shenzhen, Luohu", 114.1200, 22.5500),
        ("Zhuhai, Gongbei", 113.5460, 22.2280),
        ("Zhuhai, Hengqin", 113.5200, 22.1300),
        ("Xiamen island", 118.0894, 24.4798),
        ("Fuzhou", 119.2965, 26.0745),
        ("Nanri island, Putian", 119.4900, 25.2200),
        ("Sanya", 109.5119, 18.2528),
        ("Urumqi", 87.6168, 43.8256),
        ("Lhasa", 91.1409, 29.6456),
        ("Harbin", 126.6424, 45.7560),
        ("Fengqing, Yunnan", 99.9318, 24.5812),
    ],
)
def test_shift_in_mainland_china(place: str, lon: float, lat: float) -> None:
    assert geo.in_mainland_china(lon, lat), place
    shift = geo.distance_m(lon, lat, *geo.wgs84_to_gcj02(lon, lat))
    assert 50 < shift < 1000, (place, shift)


def test_to_wgs84_by_crs() -> None:
    assert geo.to_wgs84(*TIANANMEN_WGS, "wgs84") == TIANANMEN_WGS
    assert geo.to_wgs84(*TIANANMEN_GCJ, geo.Crs.gcj02) == geo.gcj02_to_wgs84(*TIANANMEN_GCJ)


def test_both_systems() -> None:
    both = geo.both(*TIANANMEN_WGS)
    assert both["wgs84"] == {"lon": 116.397128, "lat": 39.916527}
    assert geo.distance_m(both["gcj02"]["lon"], both["gcj02"]["lat"], *TIANANMEN_GCJ) < 1.0


def test_haversine_distance() -> None:
    # One degree of latitude on the mean-radius sphere: 2*pi*R/360.
    degree = 2 * math.pi * 6371008.8 / 360  # 111195.08 m
    assert geo.distance_m(115.0, 28.0, 115.0, 29.0) == pytest.approx(degree, abs=1e-6)
    assert geo.distance_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(degree, abs=1e-6)
    assert geo.distance_m(115.85, 28.68, 115.85, 28.68) == 0.0
    a, b = (116.4074, 39.9042), (121.4737, 31.2304)  # Beijing, Shanghai: ~1067 km
    assert geo.distance_m(*a, *b) == pytest.approx(1_067_000, rel=0.005)
    assert geo.distance_m(*a, *b) == geo.distance_m(*b, *a)
    # antipodes: half the circumference, no math domain error from rounding
    assert geo.distance_m(0, 0, 180, 0) == pytest.approx(geo.EARTH_RADIUS_M * math.pi)


def test_h3_cells() -> None:
    r7, r9 = geo.cells(115.8582, 28.6820)
    assert h3.get_resolution(r7) == 7 and h3.get_resolution(r9) == 9
    # each resolution is indexed from the point itself: H3 children do not nest exactly, so
    # the r9 cell's parent need not be the r7 cell that contains the point
    assert r7 == h3.latlng_to_cell(28.6820, 115.8582, 7)  # lat first in h3, lon first here
    assert r9 == h3.latlng_to_cell(28.6820, 115.8582, 9)


def test_walking() -> None:
    assert geo.walking_minutes(1125, 4.5) == pytest.approx(15.0)
    assert geo.walking_distance_m(15, 4.5) == pytest.approx(1125.0)
    assert geo.walking_minutes(geo.walking_distance_m(7.5, 5.0), 5.0) == pytest.approx(7.5)


def test_deep_links_use_each_apps_coordinate_system_and_encode_the_name() -> None:
    name = "京竹林村 爱心驿站&休息点"
    links = geo.deep_links(*TIANANMEN_WGS, name)
    g_lon, g_lat = geo.wgs84_to_gcj02(*TIANANMEN_WGS)

    amap = urlsplit(links["amap"])
    assert (amap.scheme, amap.netloc, amap.path) == ("https", "uri.amap.com", "/marker")
    q = parse_qs(amap.query)
    assert q["position"] == [f"{g_lon:.6f},{g_lat:.6f}"]
    assert q["name"] == [name] and q["coordinate"] == ["gaode"] and q["callnative"] == ["1"]

    baidu = urlsplit(links["baidu"])
    assert (baidu.scheme, baidu.netloc, baidu.path) == ("baidumap", "map", "/marker")
    q = parse_qs(baidu.query)
    assert q["location"] == [f"{g_lat:.6f},{g_lon:.6f}"]  # lat first
    assert q["title"] == [name] and q["coord_type"] == ["gcj02"] and q["src"] == ["gonghui"]

    assert links["geo"] == "geo:39.916527,116.397128"  # WGS-84, lat first
    # the & in the name must not start a new parameter, and no raw spaces
    assert "%26" in links["amap"] and " " not in links["amap"] + links["baidu"]


@pytest.mark.parametrize(
    ("lon", "lat", "radius"),
    [
        (115.8582, 28.6829, 1125.0),  # Nanchang, 15 minutes
        (99.93, 24.58, 20_000.0),  # the largest search radius
        (126.63, 45.75, 8000.0),  # Harbin: further north, wider in longitude
        (10.0, -60.0, 5000.0),  # far south
    ],
)
def test_bounding_box_holds_the_circle_and_touches_it(
    lon: float, lat: float, radius: float
) -> None:
    box = geo.bounding_box(lon, lat, radius)
    assert box is not None
    west, south, east, north = box
    rng = random.Random(radius)
    # Points on the circle itself (1 mm inside, against rounding in point_at), every way.
    for bearing in [0, 90, 180, 270] + [rng.uniform(0, 360) for _ in range(400)]:
        p_lon, p_lat = point_at(lon, lat, bearing, radius - 0.001)
        assert geo.distance_m(lon, lat, p_lon, p_lat) <= radius
        assert west <= p_lon <= east and south <= p_lat <= north, bearing
    # Tight: the circle reaches within a centimetre of each side (the widest longitude is
    # reached north of the centre's parallel, at the tangent meridian).
    assert north - point_at(lon, lat, 0, radius)[1] < 2e-7
    assert point_at(lon, lat, 180, radius)[1] - south < 2e-7
    widest = max(point_at(lon, lat, b / 10, radius)[0] for b in range(1800))
    assert east - widest < 2e-7


def test_no_bounding_box_around_a_pole_or_across_the_180th_meridian() -> None:
    assert geo.bounding_box(0.0, 89.995, 1125.0) is None  # the north pole is in the circle
    assert geo.bounding_box(0.0, -89.995, 1125.0) is None
    assert geo.bounding_box(179.995, -17.0, 1125.0) is None  # Fiji, across the meridian
    assert geo.bounding_box(-179.995, -17.0, 1125.0) is None
    assert geo.bounding_box(179.9, -17.0, 1125.0) is not None
