#!/usr/bin/python
# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: run the VDE switches and wirefilters one pnode needs."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vde_network
short_description: Run the VDE switches and wirefilters of one pnode
description:
  - Makes the set of C(vde_switch) and C(wirefilter) daemons of one experiment on one pnode match a
    plan written by the containerize compiler (C(containerize_switches) and C(containerize_wirefilters)
    of C(host_vars/pnode-NNNN.yml)). One call handles every switch and wirefilter of the pnode.
  - A switch C(ID) lives in O(run_dir) as C(ID.ctl) (socket directory), C(ID.mgmt) (management
    socket) and C(ID.pid). A wirefilter C(ID) has C(ID.wf.mgmt), C(ID.wf.pid) and C(ID.wf.json), the
    state file recording its argv and the pids of the two switches it was started against.
  - A switch is (re)started when its process is gone or runs with other arguments. A wirefilter is
    (re)started when its process is gone, its planned argv changed, or one of its switches was
    restarted (a wirefilter does not reconnect by itself and spins when a switch dies).
    Wirefilters start only once both of their switches answer.
  - Daemons of O(run_dir) that are no longer in the plan are stopped.
  - Every planned daemon runs at real-time priority (round robin, 20), so frames never wait for an
    ordinary process to give up a CPU; a running one without it gets it (RV(prioritized)).
  - With O(state=absent) every daemon with a pid file in O(run_dir) (switches, wirefilters, and any
    tap plug or start command supervisor left behind) is killed and O(run_dir) is removed.
  - Processes are checked with C(kill -0), their C(/proc/PID/status) state (zombies count as dead)
    and their command line, which must name the pid file, so a reused pid is never mistaken for a
    daemon.
  - With O(tag), the same call also carries the pnode's substrates that cross pnodes over VXLAN
    (O(uplinks), O(pnet)) as M(containerize.deploy.vde_uplinks) does, after the switches (and with
    O(state=absent) before they stop; RV(uplinks)). The vde role does it so because over SSH every
    module call costs a pnode ~0.2 s of CPU before it does any work.
version_added: "0.1.0"
author:
  - containerize authors
extends_documentation_fragment:
  - containerize.deploy.experiment.run_dir
  - containerize.deploy.experiment.network
  - containerize.deploy.experiment.uplinks
  - containerize.deploy.experiment.attributes
options:
  state:
    description: C(present) runs exactly the plan, C(absent) removes everything of O(run_dir).
    type: str
    choices: [present, absent]
    default: present
notes:
  - Needs the C(vde2) package (C(vde_switch), C(wirefilter)).
requirements:
  - vde2
"""

EXAMPLES = r"""
- name: Run the switches and wirefilters of this pnode
  vde_network:
    run_dir: /var/containers/run/1a2b3c4d
    switches:
      - {id: s0, substrate: lan0, ports: 16, role: substrate}
      - {id: p-a-eth0, substrate: lan0, ports: 4, role: private}
    wirefilters:
      - id: w-a-eth0
        left: p-a-eth0
        right: s0
        right_port: 3
        left_to_right: {bandwidth: 100000000, delay_ms: 5.0, loss: 0.0}
        right_to_left: {bandwidth: 100000000, delay_ms: 5.0, loss: 0.0}

- name: Use the compiler's plan for this pnode
  vde_network:
    run_dir: "{{ containerize_run_dir }}"
    switches: "{{ containerize_switches }}"
    wirefilters: "{{ containerize_wirefilters }}"
    tag: "{{ containerize_exp_tag }}"
    pnet: "{{ containerize_pnet }}"
    uplinks: "{{ containerize_uplinks }}"

- name: Stop everything of the experiment on this pnode
  vde_network:
    run_dir: /var/containers/run/1a2b3c4d
    state: absent
"""

RETURN = r"""
started:
  description: Ids of switches and wirefilters started (they were not running).
  returned: always
  type: list
  elements: str
  sample: [s0, w-a-eth0]
restarted:
  description: Ids of switches and wirefilters killed and started again (changed plan, dead switch).
  returned: always
  type: list
  elements: str
  sample: [w-a-eth0]
stopped:
  description: Ids (or pid file names) of daemons stopped (absent, or no longer in the plan).
  returned: always
  type: list
  elements: str
  sample: [s0]
prioritized:
  description:
    - Ids of running switches and wirefilters given real-time priority (round robin, priority 20, as
      C(chrt -a -r -p 20) sets it), which every daemon this module starts gets. Where the pnode
      refuses it, daemons run without it.
  returned: always
  type: list
  elements: str
  sample: [s0]
pids:
  description: Pid of every planned switch and wirefilter after the call (state=present, not check mode).
  returned: success
  type: dict
  sample: {s0: 1234, w-a-eth0: 1240}
uplinks:
  description: With O(tag), what was done to the uplinks, as M(containerize.deploy.vde_uplinks) returns it.
  returned: when O(tag) is given
  type: dict
  sample: {changes: ["create vxlan x1a2b3c4d0"], started: [s0], restarted: [], stopped: [], device: pnet}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import exit_result
from ansible_collections.containerize.deploy.plugins.module_utils.spec import plan_module, run_dir_spec
from ansible_collections.containerize.deploy.plugins.module_utils.vde_run import NETWORK_OPTIONS, run_network


def main():
    module = plan_module(AnsibleModule, run_dir_spec(), {
        **NETWORK_OPTIONS,
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    })
    exit_result(module, run_network(module, module.params["state"]))


if __name__ == "__main__":
    main()
