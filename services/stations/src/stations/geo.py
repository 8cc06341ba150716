"""Coordinates: GCJ-02 <-> WGS-84, great-circle distance, H3 cells, walking time, map deep links.

Stations are stored in WGS-84 (what GPS, OSM and H3 speak). Chinese map apps (Amap, Tencent,
Baidu with `coord_type=gcj02`) show and hand out GCJ-02, the obfuscated "Mars" datum, so every
point the API takes or returns names its system. The conversion is the standard public algorithm
(Krasovsky 1940 ellipsoid plus the well-known transformLat/transformLon polynomials); it only
applies inside mainland China, elsewhere the two systems coincide.
"""

from __future__ import annotations

import math
from enum import StrEnum
from urllib.parse import quote

import h3

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 algorithm.
_A = 6378245.0
_EE = 0.00669342162296594323

EARTH_RADIUS_M = 6371008.8  # mean Earth radius (IUGG R1)

H3_COARSE = 7  # ~1.2 km edge: nearby search scans these
H3_FINE = 9  # ~0.17 km edge


class Crs(StrEnum):
    wgs84 = "wgs84"
    gcj02 = "gcj02"


# --- mainland China -------------------------------------------------------------------------

# The classic rough box used by GCJ-02 implementations; it is deliberately generous (it also
# covers parts of Korea, Mongolia and Vietnam) because no station lives there.
_CHINA_BOX = (72.004, 0.8293, 137.8347, 55.8271)  # min lon, min lat, max lon, max lat

# Approximate polygons (lon, lat) of places inside the box that use WGS-84 on their maps:
# Hong Kong, Macau and Taiwan (main island with Penghu, plus Kinmen and Matsu). They are drawn
# to leave the neighbouring mainland cities (Shenzhen's Shekou and Futian, Zhuhai, Xiamen,
# Fujian's coastal islands) outside.
_NO_SHIFT_AREAS: tuple[tuple[tuple[float, float], ...], ...] = (
    # Hong Kong: Deep Bay and the Shenzhen River form the northern edge.
    (
        (113.82, 22.13),
        (114.45, 22.13),
        (114.45, 22.45),
        (114.26, 22.545),
        (114.10, 22.53),
        (114.02, 22.505),
        (113.95, 22.50),
        (113.90, 22.43),
        (113.82, 22.40),
    ),
    # Macau: peninsula, Taipa and Cotai; Zhuhai's Gongbei and Hengqin stay outside.
    (
        (113.53, 22.22),
        (113.56, 22.22),
        (113.60, 22.20),
        (113.60, 22.10),
        (113.55, 22.10),
        (113.55, 22.17),
        (113.53, 22.18),
    ),
    # Taiwan and Penghu.
    (
        (119.25, 23.05),
        (119.25, 23.85),
        (119.80, 24.20),
        (120.80, 25.15),
        (121.50, 25.40),
        (122.10, 25.20),
        (122.10, 21.85),
        (120.80, 21.85),
    ),
    # Kinmen (Xiamen island's east coast is at ~118.20).
    ((118.22, 24.38), (118.50, 24.38), (118.50, 24.53), (118.22, 24.53)),
    # Matsu: Juguang, Nangan/Beigan, Dongyin.
    ((119.90, 25.93), (120.02, 25.93), (120.02, 26.00), (119.90, 26.00)),
    ((119.90, 26.13), (120.02, 26.13), (120.02, 26.27), (119.90, 26.27)),
    ((120.45, 26.34), (120.53, 26.34), (120.53, 26.40), (120.45, 26.40)),
)


def _in_polygon(lon: float, lat: float, polygon: tuple[tuple[float, float], ...]) -> bool:
    """Even-odd ray casting; fine for these small, simple polygons."""
    inside = False
    j = len(polygon) - 1
    for i, (xi, yi) in enumerate(polygon):
        xj, yj = polygon[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


# Each polygon's bounding box first: most points are far from all of them, and the box test
# is much cheaper than ray casting (a nearby search converts a point per result).
_NO_SHIFT_BOXES = tuple(
    (
        min(x for x, _ in area),
        min(y for _, y in area),
        max(x for x, _ in area),
        max(y for _, y in area),
        area,
    )
    for area in _NO_SHIFT_AREAS
)


def in_mainland_china(lon: float, lat: float) -> bool:
    """True where GCJ-02 differs from WGS-84: the rough box minus Hong Kong, Macau, Taiwan."""
    min_lon, min_lat, max_lon, max_lat = _CHINA_BOX
    if not (min_lon <= lon <= max_lon and min_lat <= lat <= max_lat):
        return False
    for west, south, east, north, area in _NO_SHIFT_BOXES:
        if west <= lon <= east and south <= lat <= north and _in_polygon(lon, lat, area):
            return False
    return True


# --- GCJ-02 ---------------------------------------------------------------------------------


def _transform_lat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def _gcj_offset(lon: float, lat: float) -> tuple[float, float]:
    """The (dlon, dlat) in degrees that GCJ-02 adds to a WGS-84 point."""
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    rad_lat = math.radians(lat)
    magic = 1.0 - _EE * math.sin(rad_lat) ** 2
    sqrt_magic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * math.cos(rad_lat) * math.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """WGS-84 -> GCJ-02; the identity outside mainland China."""
    if not in_mainland_china(lon, lat):
        return lon, lat
    dlon, dlat = _gcj_offset(lon, lat)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """GCJ-02 -> WGS-84 by fixed-point iteration; converges to ~1e-7 m in a few steps.

    The one-step inverse (subtract the offset computed at the GCJ point) is off by up to a few
    metres; iterating on the forward transform removes that error because the offset varies
    slowly (its Jacobian is close to the identity).
    """
    if not in_mainland_china(lon, lat):
        return lon, lat
    w_lon, w_lat = lon, lat
    for _ in range(30):
        dlon, dlat = _gcj_offset(w_lon, w_lat)
        err_lon = w_lon + dlon - lon
        err_lat = w_lat + dlat - lat
        w_lon -= err_lon
        w_lat -= err_lat
        if abs(err_lon) < 1e-12 and abs(err_lat) < 1e-12:
            break
    return w_lon, w_lat


def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """A point given in `crs` as WGS-84."""
    return gcj02_to_wgs84(lon, lat) if crs == Crs.gcj02 else (lon, lat)


def both(
    lon: float, lat: float, digits: int = 7, gcj02: tuple[float, float] | None = None
) -> dict[str, dict[str, float]]:
    """A WGS-84 point in both systems, as the API returns locations (7 places = ~1 cm);
    `gcj02`: the point's GCJ-02 coordinates when the caller has them already."""
    g_lon, g_lat = gcj02 or wgs84_to_gcj02(lon, lat)
    return {
        "wgs84": {"lon": round(lon, digits), "lat": round(lat, digits)},
        "gcj02": {"lon": round(g_lon, digits), "lat": round(g_lat, digits)},
    }


# --- distance, cells, walking ---------------------------------------------------------------


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle (haversine) distance in metres on the mean-radius sphere."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlmb = math.radians(lon2 - lon1)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


# Added to each side of a bounding box (~1 cm): float rounding never leaves a point out.
_BOX_MARGIN_DEG = 1e-7


def bounding_box(
    lon: float, lat: float, radius_m: float
) -> tuple[float, float, float, float] | None:
    """The smallest (west, south, east, north) box holding every point within `radius_m` of
    (lon, lat) by `distance_m`, plus a centimetre; None when no such box exists in plain
    degrees (the circle holds a pole or crosses the 180th meridian).

    On the sphere the circle reaches `radius / R` radians north and south; east and west it
    reaches the meridians tangent to it, asin(sin(radius / R) / cos(lat)) away.
    """
    delta = radius_m / EARTH_RADIUS_M
    dlat = math.degrees(delta)
    south, north = lat - dlat, lat + dlat
    if north >= 90.0 or south <= -90.0:
        return None
    dlon = math.degrees(math.asin(min(1.0, math.sin(delta) / math.cos(math.radians(lat)))))
    west, east = lon - dlon, lon + dlon
    if west <= -180.0 or east >= 180.0:
        return None
    m = _BOX_MARGIN_DEG
    return west - m, south - m, east + m, north + m


def cells(lon: float, lat: float) -> tuple[str, str]:
    """The (resolution 7, resolution 9) H3 cells of a WGS-84 point."""
    return h3.latlng_to_cell(lat, lon, H3_COARSE), h3.latlng_to_cell(lat, lon, H3_FINE)


def walking_minutes(distance_m: float, speed_kmh: float) -> float:
    """Minutes to walk `distance_m` at `speed_kmh` (straight line: a lower bound)."""
    return distance_m / (speed_kmh * 1000.0 / 60.0)


def walking_distance_m(minutes: float, speed_kmh: float) -> float:
    """Metres walked in `minutes` at `speed_kmh` (15 min at 4.5 km/h = 1125 m)."""
    return minutes * speed_kmh * 1000.0 / 60.0


# --- deep links -----------------------------------------------------------------------------


def deep_links(
    lon: float, lat: float, name: str, gcj02: tuple[float, float] | None = None
) -> dict[str, str]:
    """Navigation links for a WGS-84 point, each in the coordinate system its app expects;
    `gcj02`: the point's GCJ-02 coordinates when the caller has them already."""
    g_lon, g_lat = gcj02 or wgs84_to_gcj02(lon, lat)
    q = quote(name, safe="")
    return {
        # Amap (高德) speaks GCJ-02; coordinate=gaode says the position is already GCJ-02.
        "amap": (
            f"https://uri.amap.com/marker?position={g_lon:.6f},{g_lat:.6f}"
            f"&name={q}&coordinate=gaode&callnative=1"
        ),
        # Baidu's native datum is BD-09, but its URI API accepts GCJ-02 when told so with
        # coord_type=gcj02 (also wgs84/bd09ll), which spares us a second, lossy transform.
        # Note the order: location=<lat>,<lon>.
        "baidu": (
            f"baidumap://map/marker?location={g_lat:.6f},{g_lon:.6f}"
            f"&title={q}&coord_type=gcj02&src=gonghui"
        ),
        # RFC 5870 geo URI: WGS-84 by definition, lat first.
        "geo": f"geo:{lat:.6f},{lon:.6f}",
    }
