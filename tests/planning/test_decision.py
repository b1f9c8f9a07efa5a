"""Decision summary: the paper's criteria (Fang et al. 2022) applied with reasons."""

from __future__ import annotations

import pytest

from alarscrew.anatomy.model import BodyLoss, BoneQuality
from alarscrew.planning.decision import decide

SAFE = {"left": True, "right": True}


def _bq(verdicts):
    return BoneQuality(dict.fromkeys(verdicts, 150.0), verdicts, ("Pickhardt 2013",))


@pytest.mark.parametrize(("loss", "verdicts", "levels", "sides", "expect"), [
    (60.0, {"l1": "normal: > 160 HU"}, 1, SAFE, "alar screws indicated"),
    (40.0, {"l1": "normal: > 160 HU"}, 1, SAFE, "alar screws not indicated"),   # loss <= 50
    (60.0, {"l1": "osteoporosis likely: <= 110 HU"}, 1, SAFE, "alar screws not indicated"),
    (60.0, {"l1": "normal: > 160 HU"}, 3, SAFE, "alar screws not indicated"),   # >= 3 levels
    (60.0, {"l1": "normal: > 160 HU"}, 2, {"left": True, "right": False},
     "alar screws not indicated"),
    (60.0, {"s1": "not measured"}, 1, SAFE, "undetermined"),                    # HU unknown
    (None, {"l1": "normal: > 160 HU"}, 1, SAFE, "undetermined"),                # loss unknown
    (60.0, {"l1": "normal: > 160 HU"}, None, SAFE, "undetermined"),             # levels unknown
])
def test_verdicts(loss, verdicts, levels, sides, expect):
    bl = None if loss is None else BodyLoss(loss, None, "test", loss > 50)
    out = decide(body_loss=bl, bone_quality=_bq(verdicts), levels=levels, sides_safe=sides)
    assert out["verdict"] == expect
    assert all(c["reason"] for c in out["criteria"])
    assert "Fang" in out["reference"]


def test_body_loss_boundary_is_strict():
    out = decide(body_loss=BodyLoss(50.0, None, "test", False), bone_quality=None, levels=1,
                 sides_safe=SAFE)
    assert out["criteria"][0]["met"] is False  # the paper: "more than 50 %"
