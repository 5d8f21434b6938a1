"""Write an experiment directory atomically: build beside it, then swap it into place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import ContainerizeError


def write_atomically(out: Path, force: bool, keep_tmp: bool, build: Callable[[Path], None]) -> None:
    """Run build(tmpdir); on success the result replaces `out`, on any failure nothing changes."""
    out = out.absolute()
    if out.exists() and not force:
        raise ContainerizeError(f"{out} already exists; pass --force to replace it (or --out DIR)")
    if out.exists() and not out.is_dir():
        raise ContainerizeError(f"{out} exists and is not a directory; refusing to replace it")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ContainerizeError(f"cannot create {out.parent}: {exc.strerror}") from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        build(tmp)
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.rename(out, old / "x")
            os.rename(tmp, out)
            shutil.rmtree(old)
        else:
            os.rename(tmp, out)
    except BaseException:
        if keep_tmp:
            raise
        shutil.rmtree(tmp, ignore_errors=True)
        raise
