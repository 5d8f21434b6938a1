# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options every module of containerize.deploy shares, documented once (module_utils/spec.py holds their spec)."""


class ModuleDocFragment:
    # The experiment's runtime directory on this pnode: every module that uses one takes it.
    RUN_DIR = r"""
options:
  run_dir:
    description:
      - Runtime directory of the experiment on this pnode (C(containerize_run_dir), C(ROOT/run/EXP_TAG)),
        with the sockets, pid files and records of what was done.
      - Socket paths below it must stay under 107 bytes, which is why it is named by the short tag.
    type: path
    required: true
"""

    # The pnode's VDE switches and wirefilters (module_utils/vde_run.py): vde_network, and hv_experiment, which
    # runs them in the same call as the pnode base when asked (network=true).
    NETWORK = r"""
options:
  tag:
    description:
      - The experiment tag (C(containerize_exp_tag)), eight hex digits, naming the uplinks' links.
      - Not given, uplinks are left alone (O(uplinks) and O(pnet) are not used).
    type: str
  switches:
    description:
      - Every VDE switch this pnode runs (C(containerize_switches)).
      - Keys other than the ones below are ignored.
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: Switch id, unique within the experiment and pnode, C([A-Za-z0-9][A-Za-z0-9-]*).
        type: str
        required: true
      ports:
        description: Number of ports (C(vde_switch -n)); usable ports are 1 to I(ports)-1.
        type: int
        required: true
      substrate:
        description: Substrate the switch carries (informational).
        type: str
      role:
        description: C(substrate) or C(private) (informational).
        type: str
      joined:
        description:
          - The switch of a point-to-point link whose two wirefilters (with I(peer)) are joined. Where both
            elements run as their nodes' plugs (I(node_plug) and C(cz-wire)), they send to each other and
            this switch is not run; otherwise it runs as any other.
        type: bool
        default: false
  wirefilters:
    description:
      - One wirefilter per shaped interface (C(containerize_wirefilters)); left is the node side,
        right the substrate side. Keys other than the ones below are ignored.
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: Wirefilter id.
        type: str
        required: true
      left:
        description: Switch id on the node side (usually a private switch).
        type: str
        required: true
      right:
        description: Switch id on the substrate side.
        type: str
        required: true
      right_port:
        description: Port on the right switch; omitted or null lets the switch choose.
        type: int
      left_port:
        description:
          - Port on the left switch. When not given, the highest port of the left switch
            (I(ports)-1) is used so that the wirefilter never shares a port with a node
            (endpoints sharing a VDE port do not hear each other).
        type: int
      left_to_right:
        description:
          - Shaping of traffic leaving the node, C({bandwidth, delay_ms, loss}).
          - I(bandwidth) is bit/s or null (unlimited), I(delay_ms) one-way milliseconds,
            I(loss) a probability from 0 to 1.
          - wirefilter delays by whole milliseconds only (it truncates), so twice I(delay_ms) is rounded
            to whole milliseconds and split, the larger half here and the smaller in I(right_to_left);
            node to node (this hop then the peer's I(right_to_left) hop, each half of the link's delay)
            keeps the planned delay to within half a millisecond.
        type: dict
      right_to_left:
        description: Shaping of traffic arriving at the node, same keys as I(left_to_right).
        type: dict
      node_plug:
        description:
          - The element may be the node's plug (a process or openvz node's interface). When the element is
            C(cz-wire), M(containerize.deploy.process_nodes) runs it on the node's tap in place of a
            plug, the private switch I(left) and this element; here it is planned (not stopped as a
            stray) but not run, and I(left) is not started. Not for I(node_kind=openvz) on an OpenVZ kernel.
        type: bool
        default: false
      peer:
        description:
          - The id of the other hop's wirefilter of a joined point-to-point link (see I(joined) of
            O(switches)). Where both run as node plugs, M(containerize.deploy.process_nodes) joins them with
            C(peer://RUN/ID.wf.data,RUN/PEER.wf.data) in place of the switch I(right).
        type: str
      node_kind:
        description: Kind of the node the shaped interface belongs to.
        type: str
      node:
        description: Node the shaped interface belongs to (informational).
        type: str
      interface:
        description: Shaped interface name (informational).
        type: str
  wire_dir:
    description:
      - Where the M(containerize.deploy.wire_element) module recorded the pnode's element
        (C(SCRIPTS_DIR/wire)); it is run for each wirefilter - the path of C(cz-wire) where it was built
        (same arguments and management socket; it takes I(delay_ms) exactly, where wirefilter takes the
        whole-millisecond split below), else C(wirefilter) (vde2) - with its recorded
        I(cpu_latency_us). Not given and no O(wire_program), C(wirefilter).
    type: path
  wire_program:
    description: The program run for each wirefilter instead of the recorded one (C(wirefilter), or a cz-wire).
    type: str
  timeout:
    description: Seconds to wait for a daemon to come up or go away.
    type: float
    default: 5.0
"""

    # The uplinks that carry the substrates crossing pnodes over VXLAN (module_utils/uplinks.py): vde_uplinks,
    # and vde_network, which realizes them in the same call as the switches.
    UPLINKS = r"""
options:
  pnet:
    description:
      - This pnode on the experiment network (C(containerize_pnet)); null when the experiment has one pnode.
    type: dict
    suboptions:
      address:
        description: IPv4 address of this pnode on the experiment network (VXLAN source address).
        type: str
        required: true
      prefix:
        description: Prefix length of the experiment network.
        type: int
        required: true
      device:
        description:
          - The experiment interface. With the local target, the veth end made in O(pnet.namespace).
            With the testbed target, an existing interface; the module adds O(pnet.address) to it when missing.
          - Null with the testbed target means the interface that already holds the address.
        type: str
      route_to:
        description:
          - The other pnodes' hosts (names or addresses). With no O(pnet.device) and no interface holding
            O(pnet.address), the experiment interface is the one that routes to the first of them that resolves.
        type: list
        elements: str
      mtu:
        description: MTU to set on O(pnet.device) (and the wire port); null leaves it alone.
        type: int
      namespace:
        description: Network namespace holding this pnode's physical side (local target only).
        type: str
      wire_namespace:
        description: Namespace standing for the experiment LAN, shared by the experiment's pnodes (local target only).
        type: str
      wire_bridge:
        description: Bridge in O(pnet.wire_namespace) the pnodes' wires are enslaved to.
        type: str
      wire_port:
        description: Name of this pnode's veth end in O(pnet.wire_namespace).
        type: str
  uplinks:
    description: Uplinks of this pnode (C(containerize_uplinks)); keys other than the ones below are ignored.
    type: list
    elements: dict
    default: []
    suboptions:
      switch:
        description: Id of the substrate switch in O(run_dir) the tap is plugged into.
        type: str
        required: true
      port:
        description:
          - Port of the switch for the tap. The compiler gives the switch's highest port, which no
            node or wirefilter uses (two endpoints on one VDE port do not hear each other).
          - Null lets the switch choose a free port.
        type: int
      vni:
        description: VXLAN network identifier of the substrate (1 to 16777215).
        type: int
        required: true
      tap:
        description: Name of the tap.
        type: str
        required: true
      bridge:
        description: Name of the bridge joining tap and VXLAN device.
        type: str
        required: true
      vxlan:
        description: Name of the VXLAN device.
        type: str
        required: true
      peers:
        description: Experiment-network addresses of the other pnodes carrying this substrate.
        type: list
        elements: str
        required: true
      substrate:
        description: The substrate (informational).
        type: str
  device:
    description: Overrides O(pnet.device); with the testbed target, the name of the experiment interface.
    type: str
  mtu:
    description: MTU of the taps and VXLAN devices, the largest frame a node may send across pnodes.
    type: int
    default: 1500
  port:
    description: UDP destination port of the VXLAN devices.
    type: int
    default: 4789
"""

    # The experiment on this pnode: every module that acts on an experiment takes these (RUN_DIR and more).
    DOCUMENTATION = RUN_DIR + r"""  exp_name:
    description: Experiment name C(EID.PID) (C(containerize_exp_name)).
    type: str
    required: true
  project:
    description: Project id (C(containerize_project)), written to each node's C(/var/containers/pid).
    type: str
    required: true
  experiment:
    description: Experiment id (C(containerize_experiment)), written to each node's C(/var/containers/eid).
    type: str
    required: true
  state:
    description:
      - C(present) makes the pnode match the plan.
      - C(absent) removes everything this module made for the experiment.
    type: str
    choices: [present, absent]
    default: present
"""

    # Modules that realize nodes from the compiler's plan (with DOCUMENTATION and ATTRIBUTES: NODE_MODULE).
    NODES = r"""
options:
  root:
    description: Pnode root (C(containerize_root)); nodes live in its C(nodes/EXP_NAME/NODE/).
    type: path
    default: /var/containers
  scripts_dir:
    description:
      - Where the roles put the scripts that run on this pnode and in its nodes (C(containerize_scripts_dir)),
        among them C(start-command.sh), the start command supervisor of every kind of node.
    type: path
  hosts:
    description:
      - The experiment's hosts for C(/etc/hosts) inside every node, as the compiler's list of
        C({address, names}) (C(containerize_hosts); localhost lines are added), or as the file's whole text.
    type: raw
    default: []
  nodes:
    description:
      - The nodes of this pnode (C(containerize_nodes)); entries of another C(kind) are ignored, but
        their names count as planned. docs/experiment-directory.md lists their keys.
    type: list
    elements: dict
    default: []
  workers:
    description:
      - Nodes handled in parallel once one needs work; nodes found as planned before that are checked
        one after the other (checking is quicker without threads).
    type: int
    default: 4
"""

    # Every module: what check mode and diff mode do.
    ATTRIBUTES = r"""
attributes:
  check_mode:
    support: full
    description: Nothing is started, stopped or written; the result says what would change.
  diff_mode:
    support: full
    description: The result's diff shows the pnode before and after, as the plan sees it.
"""

    # Modules whose action plugin (plugin_utils/in_process.py) fills the plan options a task leaves out.
    PLAN = r"""
attributes:
  action:
    support: full
    description:
      - The plan options a task leaves out (C(nodes), C(hosts), C(switches), C(wirefilters), C(uplinks), those
        the module takes) are the host's C(containerize_*) variable of the same name, which the module's action
        plugin passes as the inventory holds it (no template pass, and the task does not carry the list back).
      - On a local pnode the action plugin runs the module in its own worker process.
"""

    # A module that realizes nodes: all of the above in one, extends_documentation_fragment:
    # [containerize.deploy.experiment.node_module]. The lines follow each fragment's `options:`/`attributes:`.
    NODE_MODULE = (DOCUMENTATION + NODES.split("options:\n", 1)[1] + ATTRIBUTES
                    + PLAN.split("attributes:\n", 1)[1])
