# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure filters for the copies of images and templates that the qemu and openvz roles put on pnodes
reached over SSH (tests/test_copies.py).

A node's image (``qemu_url``) or template (``openvz_template``) names a file on the machine the
playbook runs on, or an http(s) URL; a pnode of the user's own (``--pnode-hosts``) may have neither
the file nor access to the URL. The roles copy what the pnode's nodes need into a directory of the
pnode (URLs downloaded once where the playbook runs), and hand the modules the copies' paths.
These filters only compute names: which files, from where, to where; the roles' tasks test which
sources exist and copy them with ansible.builtin.copy (checksum-compared, atomic on the pnode).
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import urllib.parse

from ansible.errors import AnsibleFilterError

# the suffixes the openvz_nodes module tries after a template name, in its order (module_utils/openvz_container.py)
TEMPLATE_EXTS = (".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.zst", ".tar.zstd", ".tzst", ".tar.bz2", ".tbz2", ".tar")
SHA256 = re.compile(r"[0-9a-fA-F]{64}")


def _nodes(nodes, kind, caller):
    if not isinstance(nodes, list):
        raise AnsibleFilterError(f"{caller}: expected the list of nodes, got {type(nodes).__name__}")
    return [node for node in nodes if isinstance(node, dict) and node.get("kind", kind) == kind]


def _source(url):
    """(http(s) URL to download or "", absolute path on the controller or "") of an image URL without fragment."""
    if url.startswith(("http://", "https://")):
        return url, ""
    if url.startswith("file://"):
        parsed = urllib.parse.urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            return "", ""
        return "", urllib.parse.unquote(parsed.path)
    return ("", url) if url.startswith("/") else ("", "")


def qemu_image_copies(nodes, default_url, dest_dir, fetch_dir, skip=()):
    """The images the qemu nodes of a pnode boot that the qemu role copies to it: one entry per image.

    An image is a node's ``qemu_url``, else DEFAULT_URL; it is copied when it is an http(s) URL (downloaded
    once into FETCH_DIR where the playbook runs), a ``file://`` URL or an absolute path (a file there; the
    role copies only sources that are files), and not in SKIP (the os_image role copies its own image).
    Each entry: ``url`` (as the nodes name it), ``fetch`` (the URL downloaded, or ""), ``src`` (the file on
    the controller), ``dest`` (the pnode directory it is copied into, DEST_DIR/KEY/, KEY the first 16 hex
    digits of the sha256 of the URL without its fragment), ``path`` (the copy) and ``node_url`` (what the
    pnode's nodes use instead: ``path`` with the URL's ``#fragment``, e.g. ``#kind=disk`` or ``#sha256=``).
    """
    copies = []
    skipped = set(skip or ())
    urls = {str(node.get("qemu_url") or default_url or "") for node in _nodes(nodes, "qemu", "qemu_image_copies")}
    for url in sorted(urls - skipped - {""}):
        base, sep, fragment = url.partition("#")
        fetch, local = _source(base)
        if not fetch and not local:
            continue
        key = hashlib.sha256(base.encode()).hexdigest()[:16]
        name = posixpath.basename(urllib.parse.urlparse(fetch).path if fetch else local.rstrip("/"))
        if not name or name in (".", ".."):
            name = "image"
        src = posixpath.join(fetch_dir, key, name) if fetch else local
        dest = posixpath.join(dest_dir, key) + "/"
        copies.append({"url": url, "fetch": fetch, "src": src, "dest": dest, "path": dest + name,
                       "node_url": dest + name + sep + fragment})
    return copies


def qemu_image_fetches(copies, checksums=None):
    """What to download where the playbook runs for COPIES: the image (verified with its checksum when one is
    known: CHECKSUMS of its URL, or its ``#sha256=`` fragment) and, optionally, its ``URL.sha256`` file."""
    checksums = checksums or {}
    fetches = []
    for copy in copies or []:
        if not copy.get("fetch"):
            continue
        base, _sep, fragment = copy["url"].partition("#")
        want = str(checksums.get(copy["url"]) or checksums.get(base) or
                   dict(urllib.parse.parse_qsl(fragment)).get("sha256") or "")
        algo, colon, digest = want.partition(":")
        digest = digest if colon else algo
        if want and (colon and algo.lower() != "sha256" or not SHA256.fullmatch(digest)):
            raise AnsibleFilterError(f"qemu_image_fetches: image {copy['url']}: checksum {want!r} is not sha256:HEX")
        fetches.append({"url": copy["fetch"], "dest": copy["src"], "required": True,
                        "checksum": f"sha256:{digest.lower()}" if want else ""})
        fetches.append({"url": copy["fetch"] + ".sha256", "dest": copy["src"] + ".sha256", "required": False,
                        "checksum": ""})
    return fetches


def image_copy_files(copies):
    """The files to copy for COPIES (each image and its SRC.sha256): [{src, dest}], dest a directory."""
    files = []
    for copy in copies or []:
        files.append({"src": copy["src"], "dest": copy["dest"]})
        files.append({"src": copy["src"] + ".sha256", "dest": copy["dest"]})
    return files


def qemu_copied_nodes(nodes, copies):
    """NODES with each copied ``qemu_url`` replaced by its copy's ``node_url`` (other nodes as they are)."""
    urls = {copy["url"]: copy["node_url"] for copy in copies or []}
    return [{**node, "qemu_url": urls[node["qemu_url"]]}
            if isinstance(node, dict) and node.get("qemu_url") in urls else node for node in nodes or []]


def qemu_copied_url(url, copies):
    """URL's copy (its ``node_url``) when COPIES has it, else URL."""
    return next((copy["node_url"] for copy in copies or [] if copy["url"] == url), url)


def qemu_copied_checksums(checksums, copies):
    """CHECKSUMS with each copied image's expected checksum also under its copy's path."""
    result = dict(checksums or {})
    for copy in copies or []:
        want = result.get(copy["url"]) or result.get(copy["url"].partition("#")[0])
        if want:
            result[copy["path"]] = want
    return result


def openvz_template_copies(nodes, default_template, dirs):
    """The templates the openvz nodes of a pnode use, each with the files where the playbook runs that the
    openvz_nodes module would take for it, in its order (DIRS, then the suffixes it tries):
    [{name, candidates}]. Absolute template paths are left out (they name a file on the pnode)."""
    names = {str(node.get("openvz_template") or default_template or "")
             for node in _nodes(nodes, "openvz", "openvz_template_copies")}
    copies = []
    for name in sorted(names - {""}):
        if name.startswith("/") or "/" in name:
            continue
        files = [name] if name.endswith(TEMPLATE_EXTS) else [name + ext for ext in TEMPLATE_EXTS]
        candidates = [posixpath.join(d, f) for d in dirs or [] if d and str(d).startswith("/") for f in files]
        copies.append({"name": name, "candidates": candidates})
    return copies


class FilterModule:
    """containerize.deploy filters for image and template copies."""

    def filters(self):
        return {
            "qemu_image_copies": qemu_image_copies,
            "qemu_image_fetches": qemu_image_fetches,
            "image_copy_files": image_copy_files,
            "qemu_copied_nodes": qemu_copied_nodes,
            "qemu_copied_url": qemu_copied_url,
            "qemu_copied_checksums": qemu_copied_checksums,
            "openvz_template_copies": openvz_template_copies,
        }
