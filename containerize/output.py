"""Write an experiment directory atomically: build beside it, then swap it into place."""

from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import ContainerizeError

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories in one step (Linux renameat2 RENAME_EXCHANGE); False when not available."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    errno = ctypes.get_errno()
    if errno in (38, 22, 95):  # ENOSYS, EINVAL, EOPNOTSUPP: the kernel or filesystem cannot exchange
        return False
    raise OSError(errno, os.strerror(errno), str(b))


def write_atomically(out: Path, force: bool, keep_tmp: bool, build: Callable[[Path], None]) -> None:
    """Run build(tmpdir); on success the result replaces `out`, on any failure nothing changes."""
    shown, out = out, out.absolute()  # messages name the directory as the user did
    if out.exists() and not force:
        raise ContainerizeError(f"{shown} already exists; pass --force to replace it (or --out DIR)")
    if out.exists() and not out.is_dir():
        raise ContainerizeError(f"{shown} exists and is not a directory; refusing to replace it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except OSError as exc:
        raise ContainerizeError(f"cannot create {shown}: {exc.strerror or exc}") from None
    try:
        build(tmp)
        os.chmod(tmp, 0o755)
        if not out.exists():
            os.rename(tmp, out)
        elif _exchange(tmp, out):  # `out` is the new directory at once; tmp now holds the old one
            shutil.rmtree(tmp)
        else:
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / "x")
            try:
                os.rename(tmp, out)
            except OSError:
                os.rename(old / "x", out)  # put the old directory back
                os.rmdir(old)
                raise
            shutil.rmtree(old)
    except BaseException as exc:
        if not keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise ContainerizeError(f"cannot write {shown}: {exc.strerror or exc}") from None
        raise
