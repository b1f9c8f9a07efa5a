"""Screw catalogs: default, YAML/CSV loading with errors naming file/row/column, the choice."""

from __future__ import annotations

import numpy as np
import pytest

from alarscrew.errors import InputError
from alarscrew.planning.catalog import DEFAULT_CATALOG, choose_screw, load_catalog
from tests.planning.phantoms import context_from_mask, grid


def test_default_catalog_matches_issue():
    assert DEFAULT_CATALOG.diameters_mm == (6.5, 7.0, 7.5, 8.0)
    assert DEFAULT_CATALOG.lengths_for(7.0) == (30.0, 35.0, 40.0, 45.0, 50.0, 55.0)
    assert len(DEFAULT_CATALOG.sizes) == 24


def test_yaml_and_csv(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("diameters_mm: [7.0, 7.5]\nlengths_mm: [35, 40, 45]\n")
    assert load_catalog(y).sizes == tuple((d, x) for d in (7.0, 7.5) for x in (35.0, 40.0, 45.0))
    y2 = tmp_path / "s.yml"
    y2.write_text("screws:\n  - {diameter_mm: 7.0, length_mm: 40}\n  - {diameter_mm: 8, "
                  "length_mm: 50}\n")
    assert load_catalog(y2).sizes == ((7.0, 40.0), (8.0, 50.0))
    c = tmp_path / "c.csv"
    c.write_text("diameter_mm,length_mm\n7.0,40\n7.5,45\n")
    assert load_catalog(c).sizes == ((7.0, 40.0), (7.5, 45.0))


@pytest.mark.parametrize(("name", "text", "match"), [
    ("bad.csv", "diameter_mm,length_mm\n7.0,40\n7.5,-45\n", r"bad.csv, row 2, column 'length_mm'"),
    ("bad.csv", "diameter,length_mm\n7.0,40\n", r"missing column\(s\) \['diameter_mm'\]"),
    ("bad.yaml", "screws:\n  - {diameter_mm: x, length_mm: 40}\n",
     r"row 1, column 'diameter_mm': expected a number"),
    ("bad.yaml", "diameters_mm: []\nlengths_mm: [40]\n", r"column 'diameters_mm'"),
    ("bad.txt", "", r"unknown catalog format"),
])
def test_bad_catalogs(tmp_path, name, text, match):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(InputError, match=match):
        load_catalog(p)


def test_choice_on_slab():
    """Slab 0 < y < 30 mm, straight axis: safe length = 30 - r - 1 mm margin (analytic).

    8.0 mm: 30 - 4 - 1 = 25 mm, ..., 6.5 mm: 30 - 3.25 - 1 = 25.75 mm: all < 30 mm,
    so nothing fits; a 40 mm slab: 8.0 mm gives 35 mm -> 8.0 x 35.
    """
    for thick, expect in ((30, None), (40, (8.0, 35.0))):
        aff, xyz = grid((80, 80, 80), origin=(-39.5, -39.5, -39.5))
        mask = (xyz[..., 1] > 0) & (xyz[..., 1] < thick) & (np.abs(xyz[..., 0]) < 38) & (
            np.abs(xyz[..., 2]) < 38)
        ctx = context_from_mask(mask, aff)
        ch = choose_screw(ctx, np.zeros(3), np.array([0, 1.0, 0]), label="test axis")
        assert ch.safe_length_by_diameter_mm[8.0] == pytest.approx(thick - 5.0, abs=0.05)
        if expect is None:
            assert ch.to_dict() is None
            assert "test axis too narrow: longest safe axis 25.8 mm for a 6.5 mm" in ch.reason
        else:
            assert (ch.diameter_mm, ch.length_mm) == expect
