"""alarscrew.anatomy: sacrum, S1 frame, landmarks, S1 body loss and bone quality from CT.

Public API
----------
analyze_anatomy(ct, *, labels=None, landmarks=None, progress=None) -> Anatomy
run_anatomy(ct_path, *, seg_paths=(), landmarks_path=None, lesion_path=None, progress=None)
save_anatomy(anatomy, out_dir, *, force=False)
render_overlay(anatomy, path, *, force=False)
load_landmarks_file(path) -> dict[str, ndarray]
"""

from __future__ import annotations

from alarscrew.anatomy.landmarks import load_landmarks_file
from alarscrew.anatomy.model import Anatomy, BodyLoss, BoneQuality, Landmark
from alarscrew.anatomy.pipeline import (
    analyze_anatomy,
    anatomy_to_dict,
    run_anatomy,
    save_anatomy,
)

__all__ = [
    "Anatomy",
    "BodyLoss",
    "BoneQuality",
    "Landmark",
    "analyze_anatomy",
    "anatomy_to_dict",
    "load_landmarks_file",
    "render_overlay",
    "run_anatomy",
    "save_anatomy",
]


def __getattr__(name: str):
    if name == "render_overlay":
        from alarscrew.anatomy.overlay import render_overlay

        return render_overlay
    raise AttributeError(f"module 'alarscrew.anatomy' has no attribute {name!r}")
