#!/usr/bin/python
"""Ansible module: the pnode base of one experiment, in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
module: hv_experiment
short_description: Set a pnode up for one containerize experiment (or remove it)
description:
  - Creates the experiment's directories under the pnode root (C(config/EXP), C(log/EXP), C(run/TAG),
    C(nodes/EXP)), writes the experiment's files into C(config/EXP), keeps a block with the
    experiment's hosts in the pnode's hosts file, and turns IPv4 forwarding on.
  - Reports which required packages are missing, so a package task runs only when it must.
  - With O(state=absent) removes exactly what it made for this experiment, and the base directories
    under the root when they are left empty.
  - One call does all of it; every extra task costs about half a second.
version_added: "0.1.0"
author: containerize developers
options:
  root:
    description: Pnode root directory.
    type: path
    required: true
  exp_name:
    description: Experiment name C(EID.PID).
    type: str
    required: true
  run_dir:
    description: Runtime directory of the experiment (sockets, pid files).
    type: path
    required: true
  project:
    description: Project id, written to C(config/EXP_NAME/pid_eid) with O(experiment).
    type: str
    required: true
  experiment:
    description: Experiment id.
    type: str
    required: true
  hosts:
    description:
      - The experiment's hosts, the compiler's list of C({address, names}). They are written to
        C(config/EXP_NAME/hosts) and, when O(hosts_block) is true, between markers naming the
        experiment in O(etc_hosts).
      - Left out of a task, the module's action plugin passes the host's C(containerize_hosts) as the
        inventory holds it (no template pass).
    type: list
    elements: dict
    default: []
  site:
    description: Site configuration (site.conf keys), written to C(config/EXP_NAME/site.conf).
    type: dict
    default: {}
  hosts_block:
    description: Keep the experiment's hosts in O(etc_hosts), as DETER did.
    type: bool
    default: true
  etc_hosts:
    description: The pnode's hosts file.
    type: path
    default: /etc/hosts
  ip_forward:
    description: Turn on IPv4 forwarding on the pnode.
    type: bool
    default: true
  packages:
    description: Debian packages the pnode needs; the module reports which are missing.
    type: list
    elements: str
    default: []
  fail_missing:
    description:
      - Fail, naming them, when some of O(packages) are missing (nobody will install them).
      - When false the caller installs RV(missing_packages), as role C(hv) does with apt.
    type: bool
    default: false
  state:
    description: C(present) to set up, C(absent) to remove.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
"""

EXAMPLES = r"""
- name: Set the pnode up
  hv_experiment:
    root: /var/containers
    exp_name: exp.proj
    run_dir: /var/containers/run/1a2b3c4d
    project: proj
    experiment: exp
    hosts:
      - {address: 10.0.0.1, names: [a, a-lan0]}
    site: {exec_root: /share/containers}
"""

RETURN = r"""
changes:
  description: What was changed (or would be, in check mode).
  type: list
  elements: str
  returned: always
missing_packages:
  description: Packages of O(packages) that are not installed.
  type: list
  elements: str
  returned: always
"""

import fcntl
import os
import shutil
import subprocess

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import check_hosts, compact_invocation

BASE_DIRS = ("config", "log", "run", "nodes")


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError:
        return None


def _missing_packages(packages):
    if not packages or not shutil.which("dpkg-query"):
        return []
    proc = subprocess.run(["dpkg-query", "--show", "--showformat=${Package} ${db:Status-Abbrev}\n", *packages],
                          capture_output=True, text=True, check=False)
    installed = {line.split()[0] for line in proc.stdout.splitlines() if line.split()[1:2] == ["ii"]}
    return [p for p in packages if p not in installed]


def _hosts_with_block(text, exp_name, block):
    """The hosts file with this experiment's block replaced (or removed when block is empty)."""
    begin, end = f"# BEGIN containerize experiment {exp_name}", f"# END containerize experiment {exp_name}"
    lines = text.splitlines()
    wanted = [begin, *block.rstrip("\n").splitlines(), end] if block.strip() else []
    if begin in lines and end in lines[lines.index(begin):]:
        # replace the block where it stands, so other experiments' blocks never make it move
        start = lines.index(begin)
        lines[start:lines.index(end, start) + 1] = wanted
    else:
        lines += wanted
    return "\n".join(lines) + "\n" if lines else ""


def _write(path, content):
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _host_lines(hosts):
    """The compiler's list of {address, names} as hosts-file lines."""
    return "".join(f"{h['address']} {' '.join(h['names'])}\n" for h in hosts)


def experiment_files(params):
    """Name -> content of the files in config/EXP_NAME."""
    hosts = _host_lines(params["hosts"])
    site = "".join(f"{key} = {params['site'][key]}\n" for key in sorted(params["site"]))
    return {
        "hosts": "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n" + hosts,
        "site.conf": f"# Site configuration of experiment {params['exp_name']} (written by containerize)\n"
                     f"[globals]\n{site}",
        "pid_eid": f"{params['project']} {params['experiment']}\n",
    }


def run(params, check):
    root, exp_name, run_dir = params["root"], params["exp_name"], params["run_dir"]
    config_dir = os.path.join(root, "config", exp_name)
    exp_dirs = [config_dir, os.path.join(root, "log", exp_name), run_dir, os.path.join(root, "nodes", exp_name)]
    changes, before, after = [], {}, {}
    present = params["state"] == "present"

    if present:
        for path in exp_dirs:
            if not os.path.isdir(path):
                changes.append(f"create {path}")
                if not check:
                    os.makedirs(path, mode=0o755, exist_ok=True)
        for name, content in sorted(experiment_files(params).items()):
            path = os.path.join(config_dir, name)
            current = _read(path)
            if current != content:
                changes.append(f"write {path}")
                before[path], after[path] = current or "", content
                if not check:
                    _write(path, content)
        if params["ip_forward"] and (_read("/proc/sys/net/ipv4/ip_forward") or "").strip() != "1":
            changes.append("turn on IPv4 forwarding")
            if not check:
                with open("/proc/sys/net/ipv4/ip_forward", "w", encoding="ascii") as handle:
                    handle.write("1\n")
    else:
        for path in exp_dirs:
            if os.path.lexists(path):
                changes.append(f"remove {path}")
                if not check:
                    shutil.rmtree(path, ignore_errors=True)
        for base in [*(os.path.join(root, d) for d in BASE_DIRS), root]:
            if os.path.isdir(base) and not os.listdir(base):
                changes.append(f"remove empty {base}")
                if not check:
                    os.rmdir(base)
        # a simulated pnode's root is {pnode_root}/pnodes/pnode-NNNN: the last one out removes pnodes/
        parent = os.path.dirname(os.path.normpath(root))
        if os.path.basename(parent) == "pnodes" and os.path.isdir(parent) and not os.listdir(parent):
            changes.append(f"remove empty {parent}")
            if not check:
                try:
                    os.rmdir(parent)
                except OSError:  # another pnode of this machine got there first, or just made its root
                    pass

    hosts_path = params["etc_hosts"]
    try:
        handle = open(hosts_path, "r+" if not check else "r", encoding="utf-8")  # noqa: SIM115
    except OSError:
        handle = None
    if handle is not None:
        with handle:
            # Several pnodes of one machine (local target) and other experiments rewrite this file
            # at the same time: read, compare and rewrite under one lock, or a block gets lost.
            fcntl.flock(handle, fcntl.LOCK_SH if check else fcntl.LOCK_EX)
            current = handle.read()
            block = _host_lines(params["hosts"])
            wanted = _hosts_with_block(current, exp_name, block if present and params["hosts_block"] else "")
            if wanted != current:
                changes.append(f"update the experiment's block in {hosts_path}")
                before[hosts_path], after[hosts_path] = current, wanted
                if not check:
                    # Rewrite in place: /etc/hosts is often a bind mount that a rename would break.
                    handle.seek(0)
                    handle.truncate()
                    handle.write(wanted)
    return changes, before, after


def main():
    module = AnsibleModule(
        argument_spec={
            "root": {"type": "path", "required": True},
            "exp_name": {"type": "str", "required": True},
            "run_dir": {"type": "path", "required": True},
            "project": {"type": "str", "required": True},
            "experiment": {"type": "str", "required": True},
            "hosts": {"type": "list", "elements": "dict", "default": []},
            "site": {"type": "dict", "default": {}},
            "hosts_block": {"type": "bool", "default": True},
            "etc_hosts": {"type": "path", "default": "/etc/hosts"},
            "ip_forward": {"type": "bool", "default": True},
            "packages": {"type": "list", "elements": "str", "default": []},
            "fail_missing": {"type": "bool", "default": False},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        supports_check_mode=True,
    )
    check_hosts(module)
    if "/" in module.params["exp_name"] or module.params["exp_name"] in ("", ".", ".."):
        module.fail_json(msg=f"exp_name {module.params['exp_name']!r} must be a plain name (EID.PID)")
    missing = _missing_packages(module.params["packages"]) if module.params["state"] == "present" else []
    if missing and module.params["fail_missing"]:
        module.fail_json(msg="missing packages (and not to be installed): " + ", ".join(missing),
                         missing_packages=missing)
    try:
        changes, before, after = run(module.params, module.check_mode)
    except OSError as exc:
        module.fail_json(msg=f"{exc.filename}: {exc.strerror}")
    result = {"changed": bool(changes), "changes": changes, "missing_packages": missing}
    if module._diff:
        result["diff"] = {"before": "".join(f"{k}:\n{v}\n" for k, v in before.items()),
                          "after": "".join(f"{k}:\n{v}\n" for k, v in after.items())}
    module.exit_json(**result, invocation=compact_invocation(module))


if __name__ == "__main__":
    main()
