#!/usr/bin/python
# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: carry the substrates that cross pnodes between their VDE switches over VXLAN."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vde_uplinks
short_description: Join the VDE switches of substrates that cross pnodes over VXLAN
description:
  - For every uplink planned for this pnode (C(containerize_uplinks) of C(host_vars/pnode-NNNN.yml))
    makes a tap plugged into the substrate's VDE switch by C(vde_plug2tap) (pid file
    C(run_dir/SWITCH.uplink.pid), state C(run_dir/SWITCH.uplink.json)), a Linux bridge and a VXLAN
    device (the planned VNI, the pnode's experiment-network address as source, UDP port O(port),
    MTU O(mtu)) in that bridge, with one all-zero forwarding entry per peer pnode (unicast head-end
    replication, no multicast needed on the experiment network). One call handles every uplink.
  - The uplink adds no shaping; wirefilters at the node side shape every path exactly once.
  - Where the "physical" side lives is given by O(pnet). With O(pnet.namespace) set (the local
    target, several pnodes on one machine) the side is that network namespace, joined by a veth
    wire (O(pnet.device) in it, O(pnet.wire_port) in O(pnet.wire_namespace)) to a bridge
    O(pnet.wire_bridge) in a namespace shared by the pnodes of the experiment, which stands for
    the experiment LAN; the wire namespace is made by the first pnode and removed by the last one
    (under a lock, an abstract unix socket named after the wire namespace). Without it (the
    testbed target) the side is the pnode's own network stack, and the experiment interface is
    O(device) or, when not given, the interface holding O(pnet.address).
  - Links are named by the compiler from the experiment tag (C(tTAGn), C(bTAGn), C(xTAGn)), so two
    experiments never share one. Links of this experiment that are not planned (any link of the
    namespace on the local target; C([tbx]TAG*) on the testbed target) are removed, as are uplink
    plugs no longer planned.
  - A plug is restarted when it died, runs in another namespace, was started against a switch
    process that is gone, or its arguments changed; bridge, VXLAN, masters, MTU, state and
    forwarding entries are then put right in one C(ip -batch) and one C(bridge -batch) call.
  - With O(state=absent) the plugs and any process left in the pnode's namespace are killed, the
    namespace (local) or the experiment's links (testbed) are removed, an address this module added
    to the experiment interface is removed, and the wire namespace is removed once no pnode is
    wired to it. The names come from the plan and from C(run_dir/uplinks.json), written at swap-in,
    so a half-failed swap-in is cleaned too.
version_added: "0.1.0"
author:
  - containerize authors
extends_documentation_fragment:
  - containerize.deploy.experiment.run_dir
  - containerize.deploy.experiment.uplinks
  - containerize.deploy.experiment.attributes
options:
  tag:
    description: The experiment tag (C(containerize_exp_tag)), eight hex digits; names of links of this experiment.
    type: str
    required: true
  state:
    description: C(present) realizes exactly the planned uplinks, C(absent) removes every uplink of the experiment here.
    type: str
    choices: [present, absent]
    default: present
  timeout:
    description: Seconds to wait for a plug to come up or go away.
    type: float
    default: 5.0
notes:
  - Needs C(iproute2) (C(ip), C(bridge)), the C(vxlan) and C(bridge) kernel modules, and C(vde2).
  - On the testbed target the experiment interface needs an MTU of O(mtu)+50 for node frames of
    O(mtu) bytes to cross unfragmented; with less, the kernel's VXLAN path MTU discovery makes
    nodes use smaller packets (TCP adapts; ICMP with C(-M do) beyond it fails).
  - The experiment network must carry UDP port O(port) between pnodes (no firewall in between).
  - The testbed target is written and documented but has not been run against a real testbed; its
    code path is exercised in network namespaces standing for two testbed pnodes.
requirements:
  - iproute2
  - vde2
"""

EXAMPLES = r"""
- name: Carry this pnode's crossing substrates to the other pnodes
  vde_uplinks:
    run_dir: "{{ containerize_run_dir }}"
    tag: "{{ containerize_exp_tag }}"
    pnet: "{{ containerize_pnet }}"
    uplinks: "{{ containerize_uplinks }}"

- name: Testbed pnode whose experiment interface is eth2
  vde_uplinks:
    run_dir: /var/containers/run/1a2b3c4d
    tag: 1a2b3c4d
    device: eth2
    pnet: {address: 198.18.0.2, prefix: 24}
    uplinks:
      - {switch: s0, port: 7, vni: 439040, tap: t1a2b3c4d0, bridge: b1a2b3c4d0, vxlan: x1a2b3c4d0, peers: [198.18.0.1]}

- name: Remove every uplink of the experiment on this pnode
  vde_uplinks:
    run_dir: /var/containers/run/1a2b3c4d
    tag: 1a2b3c4d
    pnet: "{{ containerize_pnet }}"
    state: absent
"""

RETURN = r"""
changes:
  description: What was (or, in check mode, would be) done, one line each.
  returned: always
  type: list
  elements: str
  sample: ["create namespace cz-1a2b3c4d-pnode-0001", "plug t1a2b3c4d0 into s0", "create vxlan x1a2b3c4d0"]
started:
  description: Switch ids whose uplink plug was started.
  returned: always
  type: list
  elements: str
  sample: [s0]
restarted:
  description: Switch ids whose uplink plug was killed and started again.
  returned: always
  type: list
  elements: str
  sample: []
stopped:
  description: Uplink plugs stopped (no longer planned, or state=absent).
  returned: always
  type: list
  elements: str
  sample: [s0]
device:
  description: The experiment interface used (state=present, when there are uplinks).
  returned: success
  type: str
  sample: pnet
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import compact_invocation
from ansible_collections.containerize.deploy.plugins.module_utils.spec import plan_module, run_dir_spec
from ansible_collections.containerize.deploy.plugins.module_utils.uplinks import UPLINK_OPTIONS, carry_uplinks


def main():
    module = plan_module(AnsibleModule, run_dir_spec(), {
        "tag": {"type": "str", "required": True},
        **UPLINK_OPTIONS,
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "timeout": {"type": "float", "default": 5.0},
    })
    result, before, after = carry_uplinks(module, module.params["state"] == "present")
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    module.exit_json(**result, invocation=compact_invocation(module))


if __name__ == "__main__":
    main()
