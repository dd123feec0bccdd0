"""Polygon batches: cuts keep the area, put each half on its side, and leave slivers thinner than tol alone."""

from __future__ import annotations

import numpy as np

from nnprobe.probes.codes.regions import polygons as pg


def random_convex(rng: np.random.Generator, n: int, corners: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random convex polygons (points on a circle, sorted by angle), padded as a batch."""
    counts = rng.integers(3, corners + 1, size=n)
    rows = []
    for k in counts:
        angles = np.sort(rng.uniform(0, 2 * np.pi, size=k))
        centre, radius = rng.normal(size=2), rng.uniform(0.1, 2.0)
        rows.append(centre + radius * np.stack([np.cos(angles), np.sin(angles)], axis=1))
    width = int(counts.max())
    verts = np.stack([np.concatenate([r, np.repeat(r[:1], width - len(r), axis=0)]) for r in rows])
    return verts, counts


def test_split_keeps_area_and_sides():
    rng = np.random.default_rng(0)
    verts, count = random_convex(rng, 500, 9)
    cen = pg.centroids(verts, count)
    direction = rng.normal(size=(500, 2))
    lines = np.column_stack([-(direction * (cen + rng.normal(scale=0.3, size=(500, 2)))).sum(1), direction])
    s = pg.split(verts, count, lines, 1e-9)
    assert 50 < s.cut.sum() < 500  # most lines cross, some miss
    area = pg.areas(verts, count)
    assert (area > 0).all()
    np.testing.assert_allclose(pg.areas(*s.pos) + pg.areas(*s.neg), area[s.cut], rtol=1e-12)
    for (v, c), sign in ((s.pos, 1), (s.neg, -1)):
        d = pg.distances(v, lines[s.cut]) * sign
        assert (d >= -1e-9).all()  # every corner of the half on its side (padding repeats a corner)
        assert (pg.areas(v, c) > 0).all() and (c >= 3).all()
        inside = pg.inside(verts[s.cut], count[s.cut], pg.centroids(v, c), 1e-12)
        assert inside.all()


def test_thin_slivers_are_not_cut():
    verts, count = pg.square(0.0, 1.0)
    corner = np.array([[-(2.0 - 1e-10), 1.0, 1.0]]) / np.sqrt(2)  # s + t = 2 - 1e-10: a corner 7e-11 deep
    assert not pg.split(verts, count, corner, 1e-9).cut.any()
    assert pg.split(verts, count, corner, 1e-12).cut.all()


def test_clip_and_centroid_of_square():
    verts, count = pg.square(0.0, 2.0)
    v, c = pg.clip(verts, count, np.array([[1.0, -1.0, 0.0]]), 1e-9)  # keep s <= 1
    assert pg.areas(v, c)[0] == 2.0
    np.testing.assert_allclose(pg.centroids(v, c)[0], [0.5, 1.0])
    _, c_out = pg.clip(verts, count, np.array([[-3.0, 1.0, 0.0]]), 1e-9)  # s >= 3: nothing
    assert c_out[0] == 0
    assert pg.edge_distance(verts, count, np.array([[0.5, 1.0]]))[0] == 0.5
