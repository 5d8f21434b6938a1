"""`containerize image-build`: build the nodes' Debian image ahead of time (what swap-in would build).

  containerize image-build [--force] [--dir DIR] [--name debian-12] [--include PKG,...] [--mirror URL]

The image (DIR/NAME.tar.gz with its .sha256) is what qemu and openvz nodes boot when the topology
and the site name no image of their own; the os_image role builds it on the first swap-in when it
is missing. Building it here first takes that minute out of the swap-in. The build is the os_image
module's (module_utils/os_image.py): atomic, checksummed, rebuilt only when its recipe changed.
"""

from __future__ import annotations

import re
import sys
import time

from ansible_collections.containerize.deploy.plugins.module_utils.os_image import (
    DEFAULT_DIR,
    DEFAULT_NAME,
    PROFILES,
    BuildError,
    OsImage,
)

from ..config import as_list
from ..errors import ContainerizeError, shown
from .base import CommandParser

_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")


def image_build_parser() -> CommandParser:
    parser = CommandParser("image-build", description="Build the Debian root image that qemu and openvz nodes "
                                                      "boot by default (mmdebstrap; about a minute), once: it is "
                                                      "checksummed and cached, and built again only when asked "
                                                      "(--force) or when its recipe changed.")
    parser.add_argument("--force", action="store_true", help="build again even when the image is current")
    parser.add_argument("--dir", default=DEFAULT_DIR, metavar="DIR",
                        help=f"where the image goes (default {DEFAULT_DIR})")
    parser.add_argument("--name", default=DEFAULT_NAME, choices=sorted(PROFILES),
                        help=f"which image (default {DEFAULT_NAME})")
    parser.add_argument("--include", default="", metavar="PKG[,PKG]",
                        help="packages to add (the swap-in's os_image_packages must name the same to use it)")
    parser.add_argument("--mirror", default="", metavar="URL", help="Debian mirror (default mmdebstrap's)")
    parser.add_argument("--timeout", type=int, default=1800, metavar="SECONDS", help="give up after (default 1800)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    return parser


def run_image_build(argv: list[str]) -> int:
    args = image_build_parser().parse_args(argv)
    packages = as_list(args.include)
    for package in packages:
        if not _PACKAGE.fullmatch(package):
            raise ContainerizeError(f"--include {shown(package)}: not a Debian package name (lower-case letters, "
                                    "digits, + . -)")
    if args.mirror and not re.fullmatch(r"(https?|file)://[^\s'\"]+", args.mirror):
        raise ContainerizeError(f"--mirror {shown(args.mirror)}: expected an http(s):// or file:// URL")
    try:
        image = OsImage(args.dir, args.name, packages, args.mirror)
        state = image.state()
        if state["current"] and not args.force:
            print(f"{image.path}: current (sha256 {state['sha256']})")
            return 0
        if not args.quiet:
            print(f"building {image.path} ({state['reason'] if not args.force else 'forced'}); "
                  f"log in {image.log_path}", file=sys.stderr)
        started = time.monotonic()
        progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
        digest = image.build(progress=progress, timeout=args.timeout)
    except BuildError as exc:
        raise ContainerizeError(f"image-build: {exc}") from None
    except OSError as exc:
        raise ContainerizeError(f"image-build: {args.dir}: {exc.strerror or exc}") from None
    print(f"{image.path}: built in {time.monotonic() - started:.0f} s (sha256 {digest})")
    return 0
