#!/usr/bin/python
# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: boot status and start command exit code of every node of one pnode, and its links."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: experiment_status
short_description: Report the status of the nodes and links of one pnode
description:
  - Reads, without changing anything, the state of every node planned for this pnode
    (C(containerize_nodes) of C(host_vars/pnode-NNNN.yml)), whatever its kind, in one call.
  - Each node gets a boot status, C(state), and the exit status of its start command, C(exit)
    (null while it runs or when there is none). C(state) is C(booted) (up and its start command
    started, or none planned), C(running) (its container or VM runs but has not finished booting),
    C(dead) (not running, or cut off), or C(unknown) (this module cannot tell for that kind).
  - C(process) nodes are C(dead) when their namespace is missing, a tap plug of theirs is not
    running, or the supervisor of their start command was killed before it recorded an exit status.
  - C(qemu) nodes follow the files of the qemu role (C(run_dir/NODE.qemu.pid), C(NODE.qemu.json),
    C(NODE.serial.log) and C(log/booted) in the node directory).
  - C(openvz) nodes follow the files of the openvz role (C(run_dir/NODE.openvz.pid) and
    C(NODE.openvz.json) of the nspawn runtime, C(log/boot.log) in the node directory, and their
    tap plugs like process nodes).
  - C(embedded_pnode) nodes are the pnode itself, C(booted) once the embedded_pnode role configured
    it (C(run_dir/NODE.embedded.json)), unless its start command's supervisor
    (C(NODE.embedded-start.pid)) was killed.
  - The start command's status comes from C(log/start_command.log) (C(start TIME), then C(exit N))
    in the node directory C(root/nodes/exp_name/NODE/), or in the machine's C(/var/containers) for
    C(embedded_pnode) nodes.
  - With O(links), each planned wirefilter is asked for its current bandwidth, delay and loss over
    its management socket, and the C(tbf) of each end-node shaped process interface is read.
  - With O(wait), the module waits until every node that is not a ghost is C(booted) (its start
    command started), at most O(timeout) seconds, and fails naming the late ones (unless
    O(fail_late=false)).
  - With O(info_files), the module keeps an C(info) script (a copy of O(scripts_dir)C(/hv/info.sh),
    which the hv role puts in place) and a C(facts) file in every node directory (seen as
    C(/var/containers/info) inside the nodes); this is the only thing it writes, and only when their
    content differs.
  - The readers of each kind are in module_utils/node_status.py, which C(containerize status),
    C(exec) and C(info) call directly.
version_added: "0.1.0"
author:
  - containerize authors
extends_documentation_fragment: [containerize.deploy.experiment.run_dir, containerize.deploy.experiment.plan]
options:
  root:
    description: Pnode root (C(containerize_root)), holds C(nodes/EXP_NAME/NODE/).
    type: path
    default: /var/containers
  exp_name:
    description: Experiment name C(EID.PID) (C(containerize_exp_name)).
    type: str
    required: true
  project:
    description: Project id (for the facts file).
    type: str
    default: ""
  experiment:
    description: Experiment id (for the facts file).
    type: str
    default: ""
  scripts_dir:
    description:
      - Where the roles put their scripts on this pnode (C(containerize_scripts_dir)); O(info_files) copies
        its C(hv/info.sh). Required with O(info_files).
    type: path
  pnode:
    description: Name of this pnode (for the facts file).
    type: str
    default: ""
  nodes:
    description:
      - Every node of this pnode (C(containerize_nodes)); keys not used here are ignored.
    type: list
    elements: dict
    default: []
  wirefilters:
    description: The planned wirefilters of this pnode (C(containerize_wirefilters)), read with O(links).
    type: list
    elements: dict
    default: []
  links:
    description: Also report the shaping in effect on every wirefilter and end-node shaped interface.
    type: bool
    default: false
  wait:
    description: Wait until every node that is not a ghost is booted.
    type: bool
    default: false
  timeout:
    description: Seconds to wait with O(wait).
    type: float
    default: 300
  fail_late:
    description:
      - With O(wait), fail when some nodes are not booted after O(timeout) seconds.
      - When false the late nodes are named in a warning (and in RV(late)) instead.
    type: bool
    default: true
  info_files:
    description: Keep C(info) and C(facts) up to date in every node directory that exists.
    type: bool
    default: false
notes:
  - Supports check mode (it only reads, except O(info_files), which check mode reports without writing).
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Read the status of every node of this pnode
  experiment_status:
    root: "{{ containerize_root }}"
    run_dir: "{{ containerize_run_dir }}"
    exp_name: "{{ containerize_exp_name }}"
    nodes: "{{ containerize_nodes }}"
    wirefilters: "{{ containerize_wirefilters }}"
    links: true
  register: status

- name: Wait until every node booted (at most 5 minutes)
  experiment_status:
    run_dir: "{{ containerize_run_dir }}"
    exp_name: "{{ containerize_exp_name }}"
    scripts_dir: "{{ containerize_scripts_dir }}"
    info_files: true
    wait: true
    timeout: 300
"""

RETURN = r"""
nodes:
  description: Per node, its kind, ghost flag, boot status, start command exit status and state, and a detail.
  returned: always
  type: dict
  sample:
    a: {kind: process, ghost: false, state: booted, exit: 0, start: finished, detail: ""}
    b: {kind: qemu, ghost: false, state: running, exit: null, start: none, detail: "booting"}
late:
  description: With O(wait), the nodes that are not ghosts and were not booted in time.
  returned: always
  type: list
  elements: str
links:
  description:
    - With O(links), per wirefilter id the shaping in effect, C({node, interface, method, running,
      left_to_right, right_to_left}) (C(bandwidth) bit/s or null, C(delay_ms), C(loss) 0..1), and
      per end-node shaped interface C(NODE.IFNAME) C({node, interface, method=tc, bandwidth}).
  returned: always
  type: dict
table:
  description: One readable line per node (name, kind, state, exit status, detail).
  returned: always
  type: list
  elements: str
waited:
  description: Seconds spent waiting with O(wait).
  returned: always
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import compact_invocation
from ansible_collections.containerize.deploy.plugins.module_utils.node_info import (
    apply_info_files,
    info_script,
    missing_script_message,
    plan_info_files,
)
from ansible_collections.containerize.deploy.plugins.module_utils.node_status import (
    Context,
    gather,
    named_nodes,
    status_lines,
)
from ansible_collections.containerize.deploy.plugins.module_utils.spec import run_dir_spec


def late_message(result, timeout):
    nodes = result["nodes"]
    details = "; ".join(f"{name} {nodes[name]['state']}"
                        + (f" ({nodes[name]['detail']})" if nodes[name]["detail"] else "") for name in result["late"])
    return f"{len(result['late'])} node(s) not booted after {timeout:g} s: {details}"


ARGUMENT_SPEC = {
    "root": {"type": "path", "default": "/var/containers"},
    **run_dir_spec(),
    "exp_name": {"type": "str", "required": True},
    "project": {"type": "str", "default": ""},
    "experiment": {"type": "str", "default": ""},
    "scripts_dir": {"type": "path"},
    "pnode": {"type": "str", "default": ""},
    "nodes": {"type": "list", "elements": "dict", "default": []},
    "wirefilters": {"type": "list", "elements": "dict", "default": []},
    "links": {"type": "bool", "default": False},
    "wait": {"type": "bool", "default": False},
    "timeout": {"type": "float", "default": 300},
    "fail_late": {"type": "bool", "default": True},
    "info_files": {"type": "bool", "default": False},
}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    if "/" in params["exp_name"] or not params["exp_name"].strip("."):
        module.fail_json(msg=f"exp_name {params['exp_name']!r} is not a valid name")
    script = None
    if params["info_files"]:
        script, script_path = info_script(params["scripts_dir"])
        if script is None:
            module.fail_json(msg=missing_script_message(script_path))
    result = gather(params)
    result["changed"] = False
    result["table"] = status_lines(result["nodes"])
    if params["info_files"]:
        writes = plan_info_files(Context(params).nodes_dir, named_nodes(params), script, params["project"],
                                 params["experiment"], params["pnode"])
        if not module.check_mode:
            apply_info_files(writes)
        result["changed"] = bool(writes)
        result["info_files"] = [label for label, _path, _text, _mode in writes]
    if params["wait"] and result["late"]:
        message = late_message(result, params["timeout"])
        if params["fail_late"]:
            module.fail_json(msg=message, **result, invocation=compact_invocation(module))
        module.warn(message)
    module.exit_json(**result, invocation=compact_invocation(module))


if __name__ == "__main__":
    main()
