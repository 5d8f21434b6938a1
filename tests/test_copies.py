"""Images and templates copied to pnodes reached over SSH (plugins/filter/copies.py, roles/qemu/tasks/copy.yml).

The filters are pure; the qemu role's copy tasks run here for real on the local connection (what they
do is the same over SSH, where tests/test_own_hosts.py runs them): an image given by an http URL is
downloaded once from a server on 127.0.0.1 where the playbook runs, and copied, with its .sha256 file,
next to a local image file; a re-run copies nothing and changes nothing.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import http.server
import json
import re
import subprocess
import sys
import threading

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.containerize.deploy.plugins.filter.copies import (
    FilterModule,
    image_copy_files,
    openvz_template_copies,
    qemu_copied_checksums,
    qemu_copied_nodes,
    qemu_copied_url,
    qemu_image_copies,
    qemu_image_fetches,
)
from tests.e2e import ENV, REPO

HEX = "ab" * 32
NODES = [
    {"name": "a", "kind": "qemu", "qemu_url": ""},
    {"name": "b", "kind": "qemu", "qemu_url": f"https://example.org/img/disk.qcow2.xz#sha256={HEX}"},
    {"name": "c", "kind": "qemu", "qemu_url": "file:///srv/images/root.tar.gz"},
    {"name": "d", "kind": "qemu", "qemu_url": "/var/cache/containerize/images/debian-12.tar.gz"},
    {"name": "e", "kind": "process"},
    {"name": "f", "kind": "openvz", "openvz_template": ""},
    {"name": "g", "kind": "openvz", "openvz_template": "busybox"},
    {"name": "h", "kind": "qemu", "qemu_url": "relative/path.img"},
]


def _copies():
    return qemu_image_copies(NODES, "/home/me/my.img", "/var/cache/cz/q", "/var/cache/cz/dl",
                             ["/var/cache/containerize/images/debian-12.tar.gz"])


def test_qemu_image_copies_names_one_copy_per_image_of_the_pnode():
    copies = {c["url"]: c for c in _copies()}
    # the os_image role's image and a relative path are not copied; every other image once
    assert sorted(copies) == ["/home/me/my.img", "file:///srv/images/root.tar.gz",
                              f"https://example.org/img/disk.qcow2.xz#sha256={HEX}"]
    url = copies[f"https://example.org/img/disk.qcow2.xz#sha256={HEX}"]
    key = hashlib.sha256(b"https://example.org/img/disk.qcow2.xz").hexdigest()[:16]
    assert url == {"url": f"https://example.org/img/disk.qcow2.xz#sha256={HEX}",
                   "fetch": "https://example.org/img/disk.qcow2.xz",
                   "src": f"/var/cache/cz/dl/{key}/disk.qcow2.xz", "dest": f"/var/cache/cz/q/{key}/",
                   "path": f"/var/cache/cz/q/{key}/disk.qcow2.xz",
                   "node_url": f"/var/cache/cz/q/{key}/disk.qcow2.xz#sha256={HEX}"}
    assert copies["file:///srv/images/root.tar.gz"]["src"] == "/srv/images/root.tar.gz"
    assert copies["file:///srv/images/root.tar.gz"]["node_url"].endswith("/root.tar.gz")
    assert copies["/home/me/my.img"]["fetch"] == "" and copies["/home/me/my.img"]["src"] == "/home/me/my.img"
    with pytest.raises(AnsibleFilterError, match="expected the list of nodes"):
        qemu_image_copies("nope", "", "/d", "/f")


def test_fetches_carry_the_known_checksum_and_an_optional_sidecar():
    fetches = qemu_image_fetches(_copies(), {})
    assert [(f["url"], f["required"], f["checksum"]) for f in fetches] == [
        ("https://example.org/img/disk.qcow2.xz", True, f"sha256:{HEX}"),
        ("https://example.org/img/disk.qcow2.xz.sha256", False, "")]
    plain = qemu_image_copies([{"kind": "qemu", "qemu_url": "http://h/x.img"}], "", "/d", "/f")
    assert qemu_image_fetches(plain, {"http://h/x.img": "sha256:" + "C" * 64})[0]["checksum"] == "sha256:" + "c" * 64
    assert qemu_image_fetches(plain, {})[0]["checksum"] == ""
    with pytest.raises(AnsibleFilterError, match="not sha256:HEX"):
        qemu_image_fetches(plain, {"http://h/x.img": "md5:0123"})


def test_the_nodes_and_the_module_arguments_name_the_copies():
    copies = _copies()
    moved = qemu_copied_nodes(NODES, copies)
    by_name = {n["name"]: n for n in moved}
    assert by_name["b"]["qemu_url"].startswith("/var/cache/cz/q/")
    assert by_name["b"]["qemu_url"].endswith(f"#sha256={HEX}")
    assert by_name["c"]["qemu_url"].endswith("/root.tar.gz")
    assert by_name["a"] == NODES[0] and by_name["d"] == NODES[3] and by_name["e"] == NODES[4]
    assert qemu_copied_url("/home/me/my.img", copies).startswith("/var/cache/cz/q/")
    assert qemu_copied_url("/elsewhere.img", copies) == "/elsewhere.img"
    sums = qemu_copied_checksums({"file:///srv/images/root.tar.gz": "sha256:" + HEX}, copies)
    path = next(c["path"] for c in copies if c["url"] == "file:///srv/images/root.tar.gz")
    assert sums == {"file:///srv/images/root.tar.gz": "sha256:" + HEX, path: "sha256:" + HEX}
    assert [f["src"] for f in image_copy_files(copies[:1])] == [copies[0]["src"], copies[0]["src"] + ".sha256"]


def test_openvz_template_copies_follow_the_modules_search_order():
    copies = openvz_template_copies(NODES, "debian-12", ["/t1", "", "/t2"])
    assert [c["name"] for c in copies] == ["busybox", "debian-12"]
    candidates = copies[0]["candidates"]
    assert candidates[:2] == ["/t1/busybox.tar.gz", "/t1/busybox.tgz"] and candidates[-1] == "/t2/busybox.tar"
    assert openvz_template_copies([{"kind": "openvz", "openvz_template": "x.tar.xz"}], "", ["/t"]) == [
        {"name": "x.tar.xz", "candidates": ["/t/x.tar.xz"]}]
    assert openvz_template_copies([{"kind": "openvz", "openvz_template": "/abs/t.tar"}], "", ["/t"]) == []
    assert set(FilterModule().filters()) == {"qemu_image_copies", "qemu_image_fetches", "image_copy_files",
                                            "qemu_copied_nodes", "qemu_copied_url", "qemu_copied_checksums",
                                            "openvz_template_copies"}


PLAYBOOK = """---
- name: Copy the nodes' images as the qemu role does for a pnode reached over SSH
  hosts: all
  gather_facts: false
  tasks:
    - name: Copy
      ansible.builtin.include_role:
        name: containerize.deploy.qemu
        tasks_from: copy.yml
    - name: Show the copies
      ansible.builtin.debug:
        msg: "COPIES {{ qemu_copies | selectattr('src', 'file') | map(attribute='node_url') | to_json | b64encode }}"
"""


@contextlib.contextmanager
def _http_server(directory):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_qemu_roles_copy_tasks_download_once_and_copy_only_what_changed(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "disk.img").write_bytes(b"disk image " * 1000)
    (served / "disk.img.sha256").write_text(hashlib.sha256((served / "disk.img").read_bytes()).hexdigest() + "\n")
    (tmp_path / "own.tar.gz").write_bytes(b"rootfs tarball" * 100)
    (tmp_path / "pb.yml").write_text(PLAYBOOK)
    with _http_server(served) as port:
        nodes = [{"name": "a", "kind": "qemu", "qemu_url": f"http://127.0.0.1:{port}/disk.img"},
                 {"name": "b", "kind": "qemu", "qemu_url": ""},
                 {"name": "c", "kind": "qemu", "qemu_url": f"http://127.0.0.1:{port}/disk.img"}]
        extra = {"containerize_nodes": nodes, "qemu_default_url": f"file://{tmp_path}/own.tar.gz",
                 "qemu_image_copy_dir": str(tmp_path / "pnode"), "qemu_image_fetch_dir": str(tmp_path / "dl"),
                 "containerize_site": {}, "ansible_python_interpreter": sys.executable}

        def run(*args):
            proc = subprocess.run(["ansible-playbook", "-i", "pnode-0000,", "-c", "local", "-e", json.dumps(extra),
                                   str(tmp_path / "pb.yml"), *args], capture_output=True, text=True, env=ENV,
                                  cwd=REPO, check=False, timeout=120)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
            changed = int(re.search(r"changed=(\d+)", proc.stdout)[1])
            return changed, json.loads(base64.b64decode(re.search(r"COPIES ([A-Za-z0-9+/=]+)", proc.stdout)[1]))

        changed, urls = run("--check")
        assert not (tmp_path / "dl").exists() and not (tmp_path / "pnode").exists()
        changed, urls = run()
        assert changed > 0
        copied = {p.name: p for p in (tmp_path / "pnode").rglob("*") if p.is_file()}
        assert sorted(copied) == ["disk.img", "disk.img.sha256", "own.tar.gz"], copied
        assert copied["disk.img"].parent == copied["disk.img.sha256"].parent != copied["own.tar.gz"].parent
        assert sorted(urls) == sorted(str(copied[name]) for name in ("disk.img", "own.tar.gz"))
        assert copied["disk.img"].read_bytes() == (served / "disk.img").read_bytes()
        # a re-run downloads and copies nothing; a changed source is copied again
        assert run()[0] == 0
        (tmp_path / "own.tar.gz").write_bytes(b"another tarball")
        assert run()[0] == 1
        assert copied["own.tar.gz"].read_bytes() == b"another tarball"
