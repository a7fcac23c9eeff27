"""Write-then-rename, so a crash or Ctrl-C never leaves a half-written file under the final name."""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

from nst_video.errors import NstError


def temp_path_beside(final: Path) -> Path:
    """A fresh temporary path in the same folder as `final` (so os.replace is atomic) with the same suffix
    (so encoders that pick a format from the extension still do)."""
    final = Path(final)
    folder = final.parent if str(final.parent) else Path(".")
    if not folder.is_dir():
        raise NstError(f"output folder does not exist or is not a folder: {folder}")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=f".partial{final.suffix}", dir=folder)
    except OSError as e:
        raise NstError(f"cannot write to {folder}: {e.strerror or e}") from None
    os.close(fd)
    return Path(name)


def move_into_place(tmp: Path, final: Path) -> None:
    """Rename a finished temporary file to its final name, with the permissions a plain open() would have
    given it (mkstemp, and writers that recreate the file, leave 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, final)


@contextlib.contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temporary path; on success rename it to `final`, on any error remove it."""
    final = Path(final)
    tmp = temp_path_beside(final)
    try:
        yield tmp
        move_into_place(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
