#!/usr/bin/python
# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: build the shaping element cz-wire on a pnode, or say that wirefilter stands in."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: wire_element
short_description: Build cz-wire, the microsecond shaping element, on a pnode (or fall back to wirefilter)
description:
  - Compiles the vde role's C(files/wire) (C(cz-wire.c), C(mgmt.c), C(wire.h)) on the pnode
    (C(gcc -O2 ... cz-wire.c mgmt.c -l:libvdeplug.so.2)) into C(DEST/CHECKSUM/cz-wire), where C(CHECKSUM)
    is that of the sources. A re-run with the same sources does not compile again and reports no change.
    Builds of other sources are removed.
  - Where it cannot be built (no compiler, no C(libvdeplug.so.2), a compile error) the element is
    vde2's C(wirefilter), the outcome is recorded in C(DEST/element.json) with the reason, and a
    warning says so; the module does not fail. The same fallback is not retried on a re-run unless
    the compiler that was missing is now there.
  - The record is what C(vde_network) (its
    O(ansible_collections.containerize.deploy.vde_network#module:wire_dir)) and C(process_nodes) read to
    run the element for each planned wirefilter.
version_added: "1.0.0"
author:
  - containerize authors
options:
  dest:
    description: Directory on the pnode for the source, the build and the record (created when missing).
    type: path
    required: true
  src:
    description: Directory of the role's files holding the sources, read on the controller into O(files).
    type: path
  files:
    description:
      - The source files, C(NAME) to C({content, mode}) (as role_files takes them); those named C(*.c) and
        C(*.h) are used, and C(cz-wire.c) must be one of them.
    type: dict
    default: {}
  cc:
    description: The C compiler.
    type: str
    default: gcc
  enabled:
    description: C(false) takes wirefilter without trying to build (recorded as the reason).
    type: bool
    default: true
  cpu_latency_us:
    description:
      - While any cz-wire of the pnode runs, it asks the kernel to keep every CPU's wake-up latency at or
        below this many microseconds (C(/dev/cpu_dma_latency), the PM QoS request tuned's
        latency-performance profile makes); the request ends with the last element. Idle CPUs then poll
        instead of sleeping, so a frame that wakes an element is not late by a deep idle state's exit.
      - Recorded in C(DEST/element.json) with the program, where the modules that run elements read it.
        Null leaves the CPUs' idle states alone. Not used with wirefilter.
    type: int
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - In check mode nothing is written or compiled; RV(program) is where the build would be when a compiler is found.
"""

EXAMPLES = r"""
- name: Build the shaping element
  containerize.deploy.wire_element:
    src: wire
    dest: "{{ containerize_scripts_dir }}/wire"
  register: vde_wire
"""

RETURN = r"""
element:
  description: C(cz-wire) or C(wirefilter).
  returned: always
  type: str
program:
  description: The program to run in a wirefilter's place (a path, or C(wirefilter)).
  returned: always
  type: str
cpu_latency_us:
  description: The CPU wake-up latency cz-wire asks for while it runs (null, none asked; O(cpu_latency_us)).
  returned: always
  type: int
reason:
  description: Why the element is wirefilter (empty for cz-wire).
  returned: always
  type: str
"""

import hashlib
import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    read_json,
    read_text,
    run,
    write_json,
    write_new_or_replace,
)
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter import ELEMENT_RECORD

MAIN_SOURCE = "cz-wire.c"
RECORD = ELEMENT_RECORD
CFLAGS = ["-O2", "-Wall"]
LIBS = ["-l:libvdeplug.so.2"]


def sources_of(files):
    """{name: text} of the C sources and headers among FILES (role_files' {name: {content, mode}})."""
    return {name: str((spec or {}).get("content") or "") for name, spec in sorted(files.items())
            if name.endswith((".c", ".h")) and "/" not in name}


def checksum(sources):
    """Of every source's name and text: a change to any of them is a new build."""
    digest = hashlib.sha256()
    for name, text in sorted(sources.items()):
        digest.update(f"{name}\0{len(text)}\0{text}".encode())
    return digest.hexdigest()[:16]


def build(cc, sources, binary):
    """Compile SOURCES (paths; the .c ones are compiled) into BINARY (atomically); the reason it failed or ''."""
    os.makedirs(os.path.dirname(binary), mode=0o755, exist_ok=True)
    partial = binary + ".partial"
    units = [path for path in sources if path.endswith(".c")]
    rc, out, err = run([cc, *CFLAGS, "-o", partial, *units, *LIBS], timeout=120)
    if rc != 0 or not os.path.isfile(partial):
        lines = [line for line in (err or out or "").splitlines() if line.strip()]
        return f"{cc} failed (rc={rc}): {lines[-1] if lines else 'no output'}"
    rc, _out, err = run([partial, "--selftest"], timeout=10)
    if rc != 0:
        return f"the built cz-wire does not run (rc={rc}): {err.strip()[-200:]}"
    os.replace(partial, binary)
    return ""


def main():
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "required": True},
            "src": {"type": "path"},
            "files": {"type": "dict", "default": {}},
            "cc": {"type": "str", "default": "gcc"},
            "enabled": {"type": "bool", "default": True},
            "cpu_latency_us": {"type": "int"},
        },
        supports_check_mode=True,
    )
    dest = os.path.abspath(module.params["dest"])
    sources = sources_of(module.params["files"])
    if MAIN_SOURCE not in sources:
        module.fail_json(msg=f"wire_element: files must hold {MAIN_SOURCE}")
    digest = checksum(sources)
    binary = os.path.join(dest, digest, "cz-wire")
    cc_path = module.get_bin_path(module.params["cc"]) if module.params["enabled"] else None
    record = read_json(os.path.join(dest, RECORD)) or {}
    latency = module.params["cpu_latency_us"]
    if latency is not None and latency < 0:
        module.fail_json(msg=f"cpu_latency_us {latency}: a number of microseconds >= 0, or null for none")
    have = {key: record.get(key) for key in ("element", "program", "checksum", "cpu_latency_us")}

    built = os.access(binary, os.X_OK) and all(read_text(os.path.join(dest, n)) == t for n, t in sources.items())
    if built:
        want = {"element": "cz-wire", "program": binary, "checksum": digest, "reason": ""}
    elif not module.params["enabled"]:
        want = {"element": "wirefilter", "program": "wirefilter", "checksum": digest,
                "reason": "disabled (enabled=false)"}
    elif not cc_path:
        want = {"element": "wirefilter", "program": "wirefilter", "checksum": digest,
                "reason": f"no C compiler ({module.params['cc']}) on the pnode"}
    elif record.get("checksum") == digest and record.get("element") == "wirefilter" and record.get("cc") == cc_path:
        want = dict(record)  # this source failed with this compiler before: not retried
    else:
        want = None  # to build

    if want is not None:
        want["cpu_latency_us"] = latency
    changed = want is None or {k: want.get(k) for k in have} != have
    if want is None:
        if module.check_mode:
            want = {"element": "cz-wire", "program": binary, "checksum": digest, "reason": ""}
        else:
            os.makedirs(dest, mode=0o755, exist_ok=True)
            for name, text in sources.items():
                write_new_or_replace(os.path.join(dest, name), text, 0o644)
            reason = build(cc_path, [os.path.join(dest, name) for name in sources], binary)
            want = ({"element": "cz-wire", "program": binary, "checksum": digest, "reason": ""} if not reason else
                    {"element": "wirefilter", "program": "wirefilter", "checksum": digest, "reason": reason,
                     "cc": cc_path})
        want["cpu_latency_us"] = latency
    if changed and not module.check_mode:
        os.makedirs(dest, mode=0o755, exist_ok=True)
        for name in os.listdir(dest):  # builds of other sources
            path = os.path.join(dest, name)
            if name != digest and os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
        write_json(os.path.join(dest, RECORD), want)
    if want["element"] != "cz-wire":
        module.warn(f"cz-wire not used, wirefilter shapes the links of this pnode: {want['reason']}")
    result = {"changed": changed, "element": want["element"], "program": want["program"], "reason": want["reason"],
              "cpu_latency_us": latency}
    if module._diff:
        result["diff"] = {"before": have, "after": {k: want.get(k) for k in have}}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
