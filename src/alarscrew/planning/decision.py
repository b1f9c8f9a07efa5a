"""Decision summary: the paper's indications and contraindications applied to one scan.

Fang et al. 2022 (Methods and Discussion):

- indication: S1 vertebral body loss at the pedicle level > 50 % on preoperative CT;
- inclusion: one or two levels fused to the sacrum; exclusion: fusion of 3 levels or more;
- exclusion: severe osteoporosis (BMD T-score <= -2.5); here judged from the anatomy stage's
  trabecular-HU verdicts when available;
- both alae must admit a safe screw (this plan).
"""

from __future__ import annotations

import numpy as np

from alarscrew.anatomy.model import BodyLoss, BoneQuality

BODY_LOSS_INDICATION_PERCENT = 50.0
MAX_LEVELS = 2


def body_loss_percent(body_loss: BodyLoss | None) -> float | None:
    """Pedicle-level loss when measured, else volume loss, else None."""
    if body_loss is None:
        return None
    for v in (body_loss.pedicle_level_percent, body_loss.volume_percent):
        if v is not None:
            return float(v)
    return None


def decide(*, body_loss: BodyLoss | None, bone_quality: BoneQuality | None,
           levels: int | None, sides_safe: dict[str, bool]) -> dict:
    """Apply the paper's criteria; every verdict comes with its reason.

    Returns
    -------
    dict
        ``verdict`` ('alar screws indicated', 'alar screws not indicated', 'undetermined'),
        ``criteria`` (list of {criterion, met, reason}), ``reference``.
    """
    crit: list[dict[str, object]] = []
    loss = body_loss_percent(body_loss)
    if loss is None:
        crit.append({"criterion": "S1 body loss > 50 %", "met": None,
                     "reason": "body loss not measured"})
    else:
        method = body_loss.method if body_loss else ""
        crit.append({"criterion": "S1 body loss > 50 %",
                     "met": loss > BODY_LOSS_INDICATION_PERCENT,
                     "reason": f"body loss {loss:.1f} % ({method})"})
    osteo = None
    reason = "bone quality not measured"
    measured = {k: v for k, v in (bone_quality.verdicts if bone_quality else {}).items()
                if "not measured" not in v.lower()}
    if bone_quality is not None and measured:
        bad = {k: v for k, v in measured.items() if "osteoporosis likely" in v.lower()
               or v.lower().startswith("osteoporosis")}
        osteo = bool(bad)
        hu = ", ".join(f"{k} {v:.0f} HU" for k, v in sorted(bone_quality.trabecular_hu.items())
                       if np.isfinite(v))
        listed = "; ".join(f"{k}: {v}" for k, v in sorted(bad.items()))
        reason = f"osteoporosis by HU ({listed})" if bad else f"no osteoporosis verdict ({hu})"
    crit.append({"criterion": "no severe osteoporosis",
                 "met": None if osteo is None else not osteo, "reason": reason})
    if levels is None:
        crit.append({"criterion": "1-2 levels fused to the sacrum", "met": None,
                     "reason": "number of levels not given (--levels)"})
    else:
        crit.append({"criterion": "1-2 levels fused to the sacrum",
                     "met": 1 <= levels <= MAX_LEVELS, "reason": f"{levels} level(s) planned"})
    for side, ok in sorted(sides_safe.items()):
        crit.append({"criterion": f"safe {side} alar screw", "met": bool(ok),
                     "reason": "safe trajectory found" if ok else "no safe trajectory"})
    mets = [c["met"] for c in crit]
    if any(m is False for m in mets):
        verdict = "alar screws not indicated"
    elif all(m is True for m in mets):
        verdict = "alar screws indicated"
    else:
        verdict = "undetermined"
    return {"verdict": verdict, "criteria": crit,
            "reference": "Fang et al., BMC Musculoskeletal Disorders 2022 (Methods, Discussion)"}
