"""One exception hierarchy for alarscrew.

Every error names what failed, what was expected, what was received and, where it
helps, how to fix it. Subclasses also inherit the matching builtin so callers that
catch ``ValueError`` or ``OSError`` keep working (as nibabel's ``AffineError``).
The CLI turns any :class:`AlarscrewError` into a one-line message and exit code 2.
"""

from __future__ import annotations


class AlarscrewError(Exception):
    """Base class of every error alarscrew raises on purpose."""


class InputError(AlarscrewError, ValueError):
    """A user-supplied file or value is malformed or out of range.

    Parameters
    ----------
    message : str
        What is wrong and what was expected.
    path : str, optional
        The file concerned.
    row : int, optional
        1-based data row (header excluded) in a table file.
    column : str, optional
        The column or field name.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.row = row
        self.column = column
        self.reason = message
        where = []
        if self.path is not None:
            where.append(self.path)
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ValidationError(InputError):
    """Cohort data break a validation rule (range, type, duplicate, unknown code)."""


class ImageError(InputError):
    """An image file cannot be read or is not what it claims to be (not CT, 2D, corrupt...)."""


class LabelMapError(ImageError):
    """A label map does not fit its CT or uses values the label scheme does not know."""


class GeometryError(AlarscrewError, ValueError):
    """A geometric quantity is invalid (singular affine, zero direction, point outside image)."""


class AnatomyNotFoundError(AlarscrewError, RuntimeError):
    """The anatomy needed (sacrum, S1) cannot be found in the image; the message says why."""


class NoSafeTrajectoryError(AlarscrewError, RuntimeError):
    """No screw meets the safety constraints; the message says which constraint failed."""


class OutputExistsError(AlarscrewError, FileExistsError):
    """An output exists already and ``--force`` was not given."""
