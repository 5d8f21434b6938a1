#!/usr/bin/python
# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: the pnode base of one experiment, in one call."""

from __future__ import annotations

DOCUMENTATION = r"""
module: hv_experiment
short_description: Set a pnode up for one containerize experiment (or remove it)
description:
  - Creates the experiment's directories on the pnode (O(config_dir), O(log_dir), O(run_dir),
    O(nodes_dir), all decided by the compiler), writes the experiment's files into O(config_dir)
    (C(hosts), C(site.conf), C(pid_eid)), keeps a block with the experiment's hosts in the pnode's
    hosts file, and turns IPv4 forwarding on.
  - With O(scripts_dir), keeps the scripts every node of the experiment shares (the hv role's
    C(files/), the start command supervisor and the info script) in that directory, exactly (a script
    that is not given is removed). This is part of this one call, not a M(containerize.deploy.role_files)
    task of its own, because on a pnode reached over SSH every module call costs ~0.2 s of CPU
    before it does any work.
  - Reports which required packages are missing, so a package task runs only when it must.
  - With O(network=true), runs the pnode's VDE network in the same call, as M(containerize.deploy.vde_network)
    does with the same options, after the base (O(state=present)) or before it is removed (O(state=absent)).
    A network whose packages are still to be installed, or with wirefilters (the vde role builds their
    shaping element first, M(containerize.deploy.wire_element)) unless O(wire_program) is given, is left
    to a later M(containerize.deploy.vde_network) call (RV(network_run) false). The swapin and swapout
    playbooks do it so, because over SSH every module call costs a pnode ~0.2 s of CPU before it does any work.
  - With O(state=absent) removes exactly what it made for this experiment, and the base directories
    under O(root) when they are left empty.
  - Why one module and not M(ansible.builtin.file), M(ansible.builtin.copy) and
    M(ansible.builtin.blockinfile) - measured by C(bench/builtins.py) on a local pnode, those tasks add
    3.5 s to a run that changes nothing (88 % of a 100-node swap-in), this module 0.13 s (3 %), as it
    runs in the Ansible worker (docs/glossary.md, "in-process").
version_added: "0.1.0"
author:
  - containerize authors
extends_documentation_fragment:
  - containerize.deploy.experiment
  - containerize.deploy.experiment.attributes
  - containerize.deploy.experiment.plan
  - containerize.deploy.experiment.network
  - containerize.deploy.experiment.uplinks
options:
  network:
    description:
      - Also run (or, with O(state=absent), remove) the pnode's VDE switches, wirefilters and uplinks, from
        O(switches), O(wirefilters), O(tag), O(uplinks) and O(pnet) (the plan's C(containerize_switches),
        C(containerize_wirefilters), C(containerize_uplinks), which the action plugin hands over when
        they are not given).
      - False leaves the network alone, and those options are not used.
    type: bool
    default: false
  root:
    description: Pnode root (C(containerize_root)); its base directories are removed when left empty.
    type: path
    required: true
  config_dir:
    description: The experiment's configuration directory (C(containerize_config_dir)).
    type: path
    required: true
  log_dir:
    description: The experiment's log directory (C(containerize_log_dir)).
    type: path
    required: true
  nodes_dir:
    description: The directory of the experiment's node directories (C(containerize_nodes_dir)).
    type: path
    required: true
  hosts:
    description:
      - The experiment's hosts, the compiler's list of C({address, names}). They are written to
        C(CONFIG_DIR/hosts) and, when O(hosts_block) is true, between markers naming the
        experiment in O(etc_hosts).
    type: list
    elements: dict
    default: []
  site:
    description: Site configuration (site.conf keys), written to C(CONFIG_DIR/site.conf).
    type: dict
    default: {}
  hosts_block:
    description: Keep the experiment's hosts in O(etc_hosts), as DETER did.
    type: bool
    default: true
  etc_hosts:
    description:
      - The pnode's hosts file.
      - A pnode without one (a minimal Debian) gets one, marked as made by containerize, because
        C(ip netns exec) binds each node's hosts file over it; it is removed again when the last
        experiment's block leaves it and nobody else wrote into it.
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
      - When false the caller installs RV(missing_packages), or O(install_missing) does.
    type: bool
    default: false
  install_missing:
    description:
      - Install RV(missing_packages) with M(ansible.builtin.apt) (cache updated if older than an hour)
        in the same task, once the module has looked (the action plugin does it; the module ignores
        the option). Role C(hv) sets it from C(hv_install_packages), so that a set-up pnode makes no
        second task for packages (a skipped task costs a pnode ~0.02 s).
    type: bool
    default: false
  scripts_dir:
    description:
      - Directory of the experiment's shared scripts (C(containerize_scripts_dir)C(/hv)), made to hold
        exactly O(scripts). Left alone when not given. With O(state=absent) it is removed.
    type: path
  scripts:
    description: The shared scripts, a dict of C(NAME) to C({content, mode}), where C(NAME) is a plain file name.
    type: dict
    default: {}
  datapath_cpus:
    description:
      - The CPUs the experiment's data-path daemons (switches, link elements, plugs) get on this pnode, the
        nodes' processes getting the others (C(run_dir/datapath.cpus), C(run_dir/nodes.cpus), read by
        M(containerize.deploy.vde_network), M(containerize.deploy.process_nodes) and C(containerize exec)).
      - C(auto) gives the data path the highest-numbered CPU (one per 8) of a pnode with two or more. A
        CPU list (C(3), C(6-7)) names them; the nodes must keep one. C(none) splits nothing.
      - Only a pnode whose plan has switches or wirefilters (given with O(network=true)) is split.
    type: str
    default: none
  scripts_src:
    description:
      - Directory of the role's files (searched like M(ansible.builtin.copy)'s O(ansible.builtin.copy#module:src)),
        read by the action plugin into O(scripts). Use one of O(scripts_src) and O(scripts).
    type: path
"""

EXAMPLES = r"""
- name: Set the pnode up
  containerize.deploy.hv_experiment:
    root: /var/containers
    run_dir: /var/containers/run/1a2b3c4d
    config_dir: /var/containers/config/exp.proj
    log_dir: /var/containers/log/exp.proj
    nodes_dir: /var/containers/nodes/exp.proj
    exp_name: exp.proj
    project: proj
    experiment: exp
    hosts:
      - {address: 10.0.0.1, names: [a, a-lan0]}
    site: {exec_root: /share/containers}
    scripts_src: "{{ role_path }}/files/"
    scripts_dir: /var/containers/config/exp.proj/scripts/hv
"""

RETURN = r"""
changes:
  description: What was changed (or would be, in check mode).
  type: list
  elements: str
  returned: always
missing_packages:
  description: Packages of O(packages) that are not installed (before O(install_missing) installed them).
  type: list
  elements: str
  returned: always
installed_packages:
  description: The packages O(install_missing) installed (or, in check mode, would install).
  type: list
  elements: str
  returned: when O(install_missing) is true and some of O(packages) were missing
network_run:
  description:
    - Whether the VDE network was run in this call (O(network=true) and nothing it needs still to come).
      When true, RV(started), RV(restarted), RV(stopped), RV(prioritized), RV(pids) and RV(uplinks) are
      returned as M(containerize.deploy.vde_network) returns them.
  type: bool
  returned: always
  sample: true
"""

import fcntl
import os
import shutil
import subprocess

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils import file_set
from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    compact_invocation,
    read_text,
    remove_path,
    write_new_or_replace,
)
from ansible_collections.containerize.deploy.plugins.module_utils.datapath_cpus import plan_split, split_files
from ansible_collections.containerize.deploy.plugins.module_utils.hosts import (
    check_hosts,
    host_lines,
    render_hosts,
    with_block,
)
from ansible_collections.containerize.deploy.plugins.module_utils.names import plain_file_name
from ansible_collections.containerize.deploy.plugins.module_utils.spec import experiment_spec, plan_module
from ansible_collections.containerize.deploy.plugins.module_utils.vde_run import NETWORK_OPTIONS, run_network

BASE_DIRS = ("config", "log", "run", "nodes")
IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"


def missing_packages(packages):
    if not packages or not shutil.which("dpkg-query"):
        return []
    proc = subprocess.run(["dpkg-query", "--show", "--showformat=${Package} ${db:Status-Abbrev}\n", *packages],
                          capture_output=True, text=True, check=False)
    installed = {line.split()[0] for line in proc.stdout.splitlines() if line.split()[1:2] == ["ii"]}
    return [p for p in packages if p not in installed]


def experiment_files(params):
    """Name -> content of the files in the config directory."""
    site = "".join(f"{key} = {params['site'][key]}\n" for key in sorted(params["site"]))
    return {
        "hosts": render_hosts(params["hosts"]),
        "site.conf": f"# Site configuration of experiment {params['exp_name']} (written by containerize)\n"
                     f"[globals]\n{site}",
        "pid_eid": f"{params['project']} {params['experiment']}\n",
    }


def plan(params):
    """The steps [(description, action, argument)] that make the pnode match PARAMS; nothing is touched."""
    exp_dirs = [params[k] for k in ("config_dir", "log_dir", "run_dir", "nodes_dir")]
    steps, before, after = [], {}, {}
    if params["state"] == "present":
        steps += [(f"create {path}", "mkdir", path) for path in exp_dirs if not os.path.isdir(path)]
        for name, content in sorted(experiment_files(params).items()):
            path = os.path.join(params["config_dir"], name)
            current = read_text(path)
            if current != content:
                steps.append((f"write {path}", "write", (path, content)))
                before[path], after[path] = current or "", content
        split = plan_split(params["datapath_cpus"], os.sched_getaffinity(0),
                           bool(params["switches"] or params["wirefilters"]))
        for path, content in split_files(params["run_dir"], split).items():
            current = read_text(path)
            if current != content:
                steps.append((f"write {path}" if content else f"remove {path}", "write" if content else "unlink",
                              (path, content)))
                before[path], after[path] = current or "", content or ""
        if params["ip_forward"] and (read_text(IP_FORWARD) or "").strip() != "1":
            steps.append(("turn on IPv4 forwarding", "write", (IP_FORWARD, "1\n")))
        if params["scripts_dir"]:
            steps += script_steps(params["scripts_dir"], params["scripts"], before, after)
    else:
        # a scripts directory inside one of the experiment's goes with it
        scripts_dir = params["scripts_dir"]
        if scripts_dir and os.path.lexists(scripts_dir) and not any(is_below(scripts_dir, path) for path in exp_dirs):
            steps.append((f"remove {scripts_dir}", "rmtree", scripts_dir))
        steps += [(f"remove {path}", "rmtree", path) for path in exp_dirs if os.path.lexists(path)]
        # base directories left empty, the root, and (a simulated pnode's root is {pnode_root}/pnodes/
        # pnode-NNNN) pnodes/: removed after the experiment's own, so "empty" is judged then
        bases = [os.path.join(params["root"], d) for d in BASE_DIRS] + [params["root"]]
        parent = os.path.dirname(os.path.normpath(params["root"]))
        if os.path.basename(parent) == "pnodes":
            bases.append(parent)
        steps += [(f"remove {path} if empty", "rmdir", path) for path in bases if os.path.isdir(path)]
    return steps, before, after


def is_below(path, folder):
    return os.path.commonpath([os.path.abspath(path), os.path.abspath(folder)]) == os.path.abspath(folder)


def script_steps(scripts_dir, scripts, before, after):
    """The steps that make SCRIPTS_DIR hold exactly SCRIPTS; BEFORE and AFTER get their diff."""
    write, remove, was, wanted = file_set.plan(scripts_dir, scripts)
    for name, _content, _mode in write:
        path = os.path.join(scripts_dir, name)
        before[path] = f"(mode {was[name]['mode']})\n{was[name]['content']}" if was[name]["content"] is not None else ""
        after[path] = f"(mode {wanted[name]['mode']})\n{wanted[name]['content']}"
    steps = [] if os.path.isdir(scripts_dir) or write else [(f"create {scripts_dir}", "mkdir", scripts_dir)]
    if write or remove:
        names = ", ".join([w[0] for w in write] + [f"-{name}" for name in remove])
        steps.append((f"put the shared scripts in {scripts_dir} ({names})", "scripts", (scripts_dir, write, remove)))
    return steps


def apply(steps):
    for _what, action, arg in steps:
        if action == "mkdir":
            os.makedirs(arg, mode=0o755, exist_ok=True)
        elif action == "scripts":
            file_set.apply(*arg)
        elif action == "rmtree":
            shutil.rmtree(arg, ignore_errors=True)
        elif action == "unlink":
            remove_path(arg[0])
        elif action == "rmdir":
            try:
                os.rmdir(arg)
            except OSError:  # not empty (another experiment), or another pnode of this machine got there first
                pass
        elif arg[0] == IP_FORWARD:
            with open(IP_FORWARD, "w", encoding="ascii") as handle:
                handle.write(arg[1])
        else:
            write_new_or_replace(arg[0], arg[1], 0o644)


# the hosts file made on a pnode that had none: this first line records that containerize made it
MADE_MARK = "# made by containerize (the pnode had no hosts file): removed when no experiment is left in it\n"
LOCALHOST = MADE_MARK + "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


def sync_hosts_block(params, check):
    """Set the experiment's block in the pnode's hosts file; (changed, before, after).

    A pnode without a hosts file gets one (LOCALHOST, whose first line records that it was made
    here); it is removed when the last experiment's block is taken out and what is left is exactly
    what was made, so a swap-out leaves the pnode as it was.
    """
    keep = params["state"] == "present" and params["hosts_block"]
    if keep and not os.path.lexists(params["etc_hosts"]):
        # a host without a hosts file (a minbase Debian): `ip netns exec` binds each node's hosts
        # file over it, which fails when there is nothing to bind over, so make one
        wanted = with_block(LOCALHOST, params["exp_name"], host_lines(params["hosts"]))
        if not check:
            write_new_or_replace(params["etc_hosts"], wanted, 0o644)
        return True, "", wanted
    try:
        handle = open(params["etc_hosts"], "r" if check else "r+", encoding="utf-8")  # noqa: SIM115
    except OSError:
        return False, None, None
    with handle:
        # Several pnodes of one machine (local target) and other experiments rewrite this file at
        # the same time: read, compare and rewrite under one lock, or a block gets lost.
        fcntl.flock(handle, fcntl.LOCK_SH if check else fcntl.LOCK_EX)
        current = handle.read()
        wanted = with_block(current, params["exp_name"], host_lines(params["hosts"]) if keep else "")
        if wanted == LOCALHOST and params["state"] == "absent":
            # made by us, and no experiment is left in it: the pnode had no hosts file
            if not check:
                os.unlink(params["etc_hosts"])
            return True, current, ""
        if wanted == current:
            return False, None, None
        if not check:
            # in place: /etc/hosts is often a bind mount that a rename would break
            handle.seek(0)
            handle.truncate()
            handle.write(wanted)
        return True, current, wanted


def network_waits(params, missing):
    """Whether the network is left to a later vde_network call: its packages are still to be installed, or
    its wirefilters wait for the shaping element the vde role builds after this call (wire_element)."""
    return bool(missing) or bool(params["wirefilters"] and not params["wire_program"])


def main():
    module = plan_module(AnsibleModule, experiment_spec(), {
        "root": {"type": "path", "required": True},
        "config_dir": {"type": "path", "required": True},
        "log_dir": {"type": "path", "required": True},
        "nodes_dir": {"type": "path", "required": True},
        "hosts": {"type": "list", "elements": "dict", "default": []},
        "site": {"type": "dict", "default": {}},
        "hosts_block": {"type": "bool", "default": True},
        "etc_hosts": {"type": "path", "default": "/etc/hosts"},
        "ip_forward": {"type": "bool", "default": True},
        "packages": {"type": "list", "elements": "str", "default": []},
        "fail_missing": {"type": "bool", "default": False},
        "scripts_dir": {"type": "path"},
        "scripts": {"type": "dict", "default": {}},
        "scripts_src": {"type": "path"},
        "install_missing": {"type": "bool", "default": False},
        "network": {"type": "bool", "default": False},
        "datapath_cpus": {"type": "str", "default": "none"},
        **NETWORK_OPTIONS,
    })
    params = module.params
    check_hosts(module)
    bad_script = file_set.bad_name(params["scripts"])
    if bad_script is not None:
        module.fail_json(msg=f"scripts: file names must be plain names, not {bad_script!r}")
    if not plain_file_name(params["exp_name"]):
        module.fail_json(msg=f"exp_name {params['exp_name']!r} must be a plain name (EID.PID)")
    missing = missing_packages(params["packages"]) if params["state"] == "present" else []
    if missing and params["fail_missing"]:
        module.fail_json(msg="missing packages (and not to be installed): " + ", ".join(missing),
                         missing_packages=missing)
    try:
        steps, before, after = plan(params)
    except ValueError as exc:  # a bad datapath_cpus
        module.fail_json(msg=str(exc))
    present = params["state"] == "present"
    network_run = params["network"] and not (present and network_waits(params, missing))
    # the daemons go before the directories holding their sockets, and start once those exist
    network = run_network(module, "absent") if network_run and not present else None
    try:
        if not module.check_mode:
            apply(steps)
        hosts_changed, hosts_before, hosts_after = sync_hosts_block(params, module.check_mode)
    except OSError as exc:
        module.fail_json(msg=f"{exc.filename}: {exc.strerror}")
    if network_run and present:
        network = run_network(module, "present")
    # an rmdir of a directory that is not empty changes nothing: not reported
    changes = [what for what, action, arg in steps
               if action != "rmdir" or not os.path.isdir(arg) or (module.check_mode and not os.listdir(arg))]
    if hosts_changed:
        changes.append(f"update the experiment's block in {params['etc_hosts']}")
        before[params["etc_hosts"]], after[params["etc_hosts"]] = hosts_before, hosts_after
    result = {"changed": bool(changes), "changes": changes, "missing_packages": missing, "network_run": network_run}
    network_diff = None
    if network:
        network_diff = network.pop("diff")
        result.update(network, changed=result["changed"] or network["changed"])
    if module._diff:
        diff = {"before": "".join(f"{k}:\n{v}\n" for k, v in before.items()),
                "after": "".join(f"{k}:\n{v}\n" for k, v in after.items())}
        result["diff"] = [diff, network_diff] if network_diff else diff
    module.exit_json(**result, invocation=compact_invocation(module))


if __name__ == "__main__":
    main()
