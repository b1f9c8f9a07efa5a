"""Write outputs atomically: a temp file beside the target, then ``os.replace``.

Nothing half-written is ever left under the final name, and an existing output is
kept unless the caller asks to overwrite it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from alarscrew.errors import OutputExistsError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _normal_mode(path: Path, *, directory: bool) -> None:
    """Give a temp file/folder the permissions an ordinary ``open``/``mkdir`` would.

    ``mkstemp``/``mkdtemp`` create 0600/0700 entries; outputs are meant to be shared
    (reports, plans), so apply 0666/0777 minus the process umask before the rename.
    """
    base = 0o777 if directory else 0o666
    path.chmod(base & ~_umask())


def check_overwrite(path: str | os.PathLike[str], *, force: bool) -> Path:
    """Refuse to replace an existing output unless ``force``."""
    p = Path(path)
    if p.exists() and not force:
        raise OutputExistsError(f"{p}: output exists already; pass --force to overwrite it")
    return p


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, force: bool = True) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    The suffix of ``path`` is kept (``.nii.gz`` included) so writers that infer the
    format from the name work.
    """
    final = check_overwrite(path, force=force)
    final.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(final.suffixes) or ".tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name.split('.')[0]}-", suffix=suffix,
                               dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    _normal_mode(tmp_path, directory=False)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike[str], text: str, *, force: bool = True) -> Path:
    """Write ``text`` (UTF-8) atomically to ``path``."""
    with atomic_path(path, force=force) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path: str | os.PathLike[str], data: bytes, *, force: bool = True) -> Path:
    """Write ``data`` atomically to ``path``."""
    with atomic_path(path, force=force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, force: bool = False) -> Iterator[Path]:
    """Build an output folder in a temporary sibling, then move it into place.

    If the block raises, the temporary folder is deleted and nothing appears at ``path``.
    With ``force`` an existing folder is replaced only after the new one is complete.
    """
    final = Path(path)
    if final.exists() and not force:
        raise OutputExistsError(f"{final}: output folder exists already; pass --force")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    _normal_mode(tmp, directory=True)
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}-old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
