"""The H3 cover of a search circle: every point of the circle lies in a cell that is searched."""

from __future__ import annotations

import random

import h3
import pytest

from stations import geo
from stations.nearby import service
from stations.testing import point_at

RADII = [5, 300, 1125, 2250, 5000, 5600, 8000, 15000, 20000]


@pytest.mark.parametrize("res", [3, 4, 5, 6])
def test_r7_range_spans_exactly_the_r7_children(res: int) -> None:
    rng = random.Random(res)
    for _ in range(100):
        cell = h3.latlng_to_cell(rng.uniform(-70, 70), rng.uniform(-180, 180), res)
        children = sorted(h3.cell_to_children(cell, 7))
        assert service.r7_range(cell) == (children[0], children[-1])
        # and nothing else: the neighbours' r7 cells fall outside the range
        lo, hi = service.r7_range(cell)
        for neighbour in h3.grid_ring(cell, 1):
            assert not any(lo <= c <= hi for c in h3.cell_to_children(neighbour, 7))


@pytest.mark.parametrize("radius", RADII)
def test_cover_holds_every_point_of_the_circle(radius: float) -> None:
    rng = random.Random(radius)
    res = service.resolution_for(radius)
    for _ in range(25):
        # mostly China (where stations are), sometimes far north or near the equator
        lon, lat = rng.choice(
            [
                (rng.uniform(73, 135), rng.uniform(18, 53)),
                (rng.uniform(-180, 180), rng.uniform(-65, 65)),
            ]
        )
        cover = set(service.covering_cells(lon, lat, radius))
        ranges = service.r7_ranges(cover)
        points = [point_at(lon, lat, b, radius - 0.001) for b in range(0, 360, 5)]
        points += [
            point_at(lon, lat, rng.uniform(0, 360), radius * rng.random() ** 0.5)
            for _ in range(100)
        ]
        for p_lon, p_lat in points:
            assert geo.distance_m(lon, lat, p_lon, p_lat) <= radius
            assert h3.latlng_to_cell(p_lat, p_lon, res) in cover
            r7 = h3.latlng_to_cell(p_lat, p_lon, 7)
            assert any(lo <= r7 <= hi for lo, hi in ranges)


def test_a_fifteen_minute_circle_is_a_few_r7_cells() -> None:
    rng = random.Random(15)
    sizes = []
    for _ in range(200):
        lon, lat = rng.uniform(113.5, 118.5), rng.uniform(24.5, 30.0)
        cover = service.covering_cells(lon, lat, 1125)
        assert all(h3.get_resolution(cell) == 7 for cell in cover)
        sizes.append(len(cover))
    assert max(sizes) <= 8 and sum(sizes) / len(sizes) <= 6


def test_coarser_cells_for_larger_circles() -> None:
    assert [service.resolution_for(r) for r in (1125, 5600, 8000, 15000, 20000)] == [7, 7, 6, 5, 5]
    # even the largest circle stays a handful of index ranges
    assert len(service.covering_cells(115.86, 28.68, 20000)) <= 20
