#!/usr/bin/python
# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: build the nodes' operating system image (a Debian root tarball) once and cache it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: os_image
short_description: Build the nodes' Debian root image once, checksummed and cached
description:
  - Builds a Debian root file system tarball with C(mmdebstrap) (systemd, udev, kmod, openssh-server,
    iproute2, iputils-ping, python3, iperf3, tcpdump) into O(dir)/O(name).tar.gz, with its sha256 in
    O(name).tar.gz.sha256 and what it was built from in O(name).recipe.json. One tarball serves qemu
    nodes (a rootfs image) and openvz nodes (a template named O(name)).
  - Nothing is done when the image is there, its recipe is the same and its sha256 matches; a build
    goes to a temporary directory and is renamed into place whole, so a failed build leaves nothing
    half-made. The builder's output goes, line by line, to O(name).build.log while it builds.
  - Run it where the playbook runs (delegated to C(localhost), with C(run_once)) and copy the result to
    the pnodes, so a pnode needs no access to the package registry.
version_added: "1.1.0"
author:
  - containerize authors
options:
  name:
    description:
      - The image (a profile of this module); C(debian-12) is Debian 12 (bookworm) with systemd.
      - C(debian-12-sysvinit) is Debian 12 with sysvinit and ifupdown instead of systemd (udev, kmod, iproute2,
        iputils-ping, procps, netbase, acpid; no openssh-server).
    type: str
    choices: [debian-12, debian-12-sysvinit]
    default: debian-12
  dir:
    description: Directory of the image's files (created when missing).
    type: path
    default: /var/cache/containerize/images
  packages:
    description: Packages to add to the profile's.
    type: list
    elements: str
    default: []
  mirror:
    description: Debian mirror to build from (empty - C(mmdebstrap)'s default).
    type: str
    default: ""
  force:
    description: Build again even when the image is current.
    type: bool
    default: false
  timeout:
    description: Seconds the build may take.
    type: int
    default: 1800
  state:
    description: C(present) builds the image when it is not current, C(query) only reports, C(absent) removes it.
    type: str
    choices: [present, query, absent]
    default: present
extends_documentation_fragment: [containerize.deploy.experiment.attributes]
"""

EXAMPLES = r"""
- name: Build the nodes' Debian image where the playbook runs
  containerize.deploy.os_image:
    dir: /var/cache/containerize/images
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
image:
  description: The image tarball.
  returned: always
  type: str
sha256:
  description: Its sha256 (after a build, the new one; null when there is none).
  returned: always
  type: str
current:
  description: Whether the image was current before this call.
  returned: always
  type: bool
reason:
  description: Why it was not current (empty when it was).
  returned: always
  type: str
log:
  description: The build log.
  returned: always
  type: str
seconds:
  description: Seconds the build took (0 without a build).
  returned: always
  type: float
"""

import re
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils.os_image import PROFILES, BuildError, OsImage

PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")


def main():
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "choices": sorted(PROFILES), "default": "debian-12"},
            "dir": {"type": "path", "default": "/var/cache/containerize/images"},
            "packages": {"type": "list", "elements": "str", "default": []},
            "mirror": {"type": "str", "default": ""},
            "force": {"type": "bool", "default": False},
            "timeout": {"type": "int", "default": 1800},
            "state": {"type": "str", "choices": ["present", "query", "absent"], "default": "present"},
        },
        supports_check_mode=True,
    )
    params = module.params
    bad = [p for p in params["packages"] if not PACKAGE.fullmatch(p)]
    if bad:
        module.fail_json(msg=f"os_image: {bad[0]!r} is not a Debian package name (lower-case letters, digits, + . -)")
    if params["mirror"] and not re.fullmatch(r"(https?|file)://[^\s'\"]+", params["mirror"]):
        module.fail_json(msg=f"os_image: mirror {params['mirror']!r} is not an http(s):// or file:// URL")
    image = OsImage(params["dir"], params["name"], params["packages"], params["mirror"])
    state = image.state()
    result = {"changed": False, "image": image.path, "sha256": state["sha256"], "current": state["current"],
              "reason": state["reason"], "log": image.log_path, "seconds": 0.0}  # fmt: skip
    before = {"image": image.path, "sha256": state["sha256"], "current": state["current"]}
    after = dict(before)
    if params["state"] == "absent":
        after = {"image": image.path, "sha256": None, "current": False}
        result["changed"] = bool(image.files())
        if result["changed"] and not module.check_mode:
            image.remove()
    elif params["state"] == "present" and (params["force"] or not state["current"]):
        result["changed"] = True
        after = {"image": image.path, "sha256": "(built)", "current": True}
        if not module.check_mode:
            started = time.monotonic()
            try:
                result["sha256"] = after["sha256"] = image.build(timeout=params["timeout"])
            except BuildError as exc:
                module.fail_json(msg=f"image {params['name']}: {exc}", **{k: v for k, v in result.items()
                                                                           if k != "changed"})
            result["seconds"] = round(time.monotonic() - started, 1)
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
