"""The arguments of a planned shaping, shared by every module that sets or changes one.

wirefilter's command line (and cz-wire's, the same subset with exact delays): vde_network starts
wirefilters, link_shaping changes running ones and must record the same arguments. The end-node tbf:
process_nodes (over netlink), link_shaping and embedded_nodes (tc), openvz and qemu (tc inside the
node) must all make and record the same qdisc.

Standard library only (see daemons.py).
"""

from __future__ import annotations

import os

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import read_json

TBF_LATENCY_MS = 50
# what the wire_element module built on a pnode, in SCRIPTS_DIR/wire: read by the modules that run elements
ELEMENT_RECORD = "element.json"


def tbf_burst(rate):
    """The tbf bucket in bytes for RATE bit/s: 10 ms worth of it, at least one 1600-byte frame."""
    return max(1600, int(rate) // 8 // 100)


def tbf_tc_args(rate):
    """`tc qdisc replace dev IF root` arguments of the end-node tbf for RATE bit/s."""
    return ["tbf", "rate", f"{int(rate)}bit", "burst", str(tbf_burst(rate)), "latency", f"{TBF_LATENCY_MS}ms"]


def fmt_num(value):
    text = f"{float(value):.6f}".rstrip("0").rstrip(".")
    return text or "0"


def wirefilter_delay(direction, delay_ms):
    """Whole milliseconds of delay for one direction (LR or RL) of a hop planned with DELAY_MS.

    wirefilter delays a packet by int(delay) ms (2.5 delays 2), and the compiler gives each of the
    two hops between two nodes half of their delay: truncating both halves would lose 1 ms each way
    on every odd delay (a 1 ms link would have none). So twice the hop's delay is rounded to whole
    ms and split, LR (from the node) taking the larger half and RL (to the node) the smaller; node to
    node, one hop's LR then the other's RL, is the planned delay to within half a millisecond.
    """
    total = int(2.0 * float(delay_ms or 0) + 0.5)
    return (total + 1) // 2 if direction == "LR" else total // 2


def exact_element(program):
    """True when PROGRAM (a wirefilter's argv[0]) is cz-wire, which delays by the microsecond: it takes
    the planned delay as it is, wirefilter its whole-millisecond split (wirefilter_delay)."""
    return os.path.basename(str(program or "")) == "cz-wire"


def element_delay(direction, delay_ms, exact):
    """The delay of one direction in the element's units (ms): exact for cz-wire, else whole ms."""
    if exact:
        return round(max(0.0, float(delay_ms or 0)), 6)
    return wirefilter_delay(direction, delay_ms)


def shaping_args(direction, spec, exact=False):
    """wirefilter (or cz-wire, EXACT) arguments for one direction (LR or RL) of a {bandwidth, delay_ms, loss} dict."""
    spec = spec or {}
    args = []
    delay = element_delay(direction, spec.get("delay_ms"), exact)
    if delay > 0:
        args += ["-d", f"{direction}{fmt_num(delay)}"]
    bandwidth = spec.get("bandwidth")
    if bandwidth:
        args += ["-b", f"{direction}{max(1, int(bandwidth) // 8)}"]
    loss = spec.get("loss") or 0
    if float(loss) > 0:
        args += ["-l", f"{direction}{fmt_num(float(loss) * 100.0)}"]
    return args


def element_argv(element, run_dir, wid, left, right, wf):
    """The argv of element WID (ELEMENT: recorded_element's) joining LEFT (the node's side: a switch socket,
    or cz-wire's tap://IFNAME) to RIGHT, shaped as WF plans; its pid file and management socket in RUN_DIR."""
    program = element["program"]
    exact = exact_element(program)
    argv = [program, "--daemon", "--pidfile", os.path.join(run_dir, f"{wid}.wf.pid"),
            "-M", os.path.join(run_dir, f"{wid}.wf.mgmt")]
    if exact and element.get("cpu_latency_us") is not None:
        argv += ["--cpu-latency", str(int(element["cpu_latency_us"]))]
    argv += ["-v", f"{left}:{right}"]
    return (argv + shaping_args("LR", wf.get("left_to_right"), exact)
            + shaping_args("RL", wf.get("right_to_left"), exact))


def runs_as_plug(wf, element):
    """True when the element of WF is its node's plug (process_nodes runs it, vde_network does not): a
    process or openvz node's wirefilter (node_plug) where the element is cz-wire, which can open the
    node's tap. Not an openvz node's on an OpenVZ kernel (/proc/vz), where vzctl's container is plugged
    into the private switch by vde_pcapplug (openvz_nodes' vzctl runtime)."""
    if wf.get("node_kind") == "openvz" and os.path.isdir("/proc/vz"):
        return False
    return bool(wf.get("node_plug")) and exact_element(element["program"])


def recorded_element(wire_dir, program=None):
    """{program, cpu_latency_us} of the element the wire_element module recorded in WIRE_DIR (None: nothing
    recorded): cz-wire's path where it was built (and is still there), else wirefilter. PROGRAM, when
    given, is run instead of the recorded one."""
    record = read_json(os.path.join(wire_dir, ELEMENT_RECORD)) if wire_dir else None
    record = record if isinstance(record, dict) else {}
    found = str(record.get("program") or "")
    if program is None:
        program = found if exact_element(found) and os.access(found, os.X_OK) else "wirefilter"
    latency = record.get("cpu_latency_us")
    return {"program": program, "cpu_latency_us": latency if isinstance(latency, int) else None}
