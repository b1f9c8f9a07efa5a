"""Spatial helpers: S1 frame, angle convention, resampling."""
