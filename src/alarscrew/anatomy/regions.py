"""Codes of the watershed regions shared by the sacrum isolation steps."""

#: Marker codes in the watershed label image.
SACRUM, ILIUM_LEFT, ILIUM_RIGHT, CRANIAL = 1, 2, 3, 4

__all__ = ["CRANIAL", "ILIUM_LEFT", "ILIUM_RIGHT", "SACRUM"]
