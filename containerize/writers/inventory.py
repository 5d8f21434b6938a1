"""The Ansible inventory of an experiment: plugin source, group_vars, host_vars, embedding.yaml.

Schema: docs/experiment-directory.md. Everything a role needs is decided here.
"""

from __future__ import annotations

from pathlib import Path

from ..compiler import Experiment
from .yamlout import dump

HEADER = "written by containerize; edit the topology and recompile instead"


def hosts_entries(exp: Experiment) -> list[dict]:
    """/etc/hosts lines: every address as NODE-SUBSTRATE, the first one also as the bare NODE."""
    entries = []
    for node in exp.topology.nodes.values():
        for index, iface in enumerate(node.interfaces):
            names = [node.name, f"{node.name}-{iface.substrate}"] if index == 0 else \
                [f"{node.name}-{iface.substrate}"]
            entries.append({"address": iface.ip, "names": names})
    return entries


def node_vars(exp: Experiment, pnode: str, name: str) -> dict:
    node = exp.topology.nodes[name]
    net = exp.networks[pnode]
    options = exp.options
    interfaces = []
    prefix = exp.pnode_place(pnode)[1]
    for iface in node.interfaces:
        attach = net.attachments[(name, iface.ifname)]
        interfaces.append({
            "ifname": iface.ifname, "substrate": iface.substrate,
            "switch": attach["switch"], "port": attach["port"],
            "mac": iface.mac, "address": iface.ip, "netmask": iface.netmask, "prefix": iface.prefix,
            "tc": attach["tc"],
        })
        if attach.get("wire"):  # its wirefilter, which may be its plug (planners/switches.py)
            interfaces[-1]["wire"] = attach["wire"]
        if attach.get("vxlan"):  # an embedded node's interface as a VXLAN device (planners/switches.py)
            interfaces[-1]["vxlan"] = attach["vxlan"]
        if attach.get("veth"):  # the other end of a veth pair (planners/switches.py veth_pairs)
            peer = attach["veth"]
            interfaces[-1]["veth"] = {"namespace": exp.namespace(peer["node"], prefix), "ifname": peer["ifname"]}
        if attach.get("bridge"):  # a port of its LAN's kernel bridge (planners/switches.py bridged_lans)
            interfaces[-1]["bridge"] = {"namespace": exp.lan_namespace(attach["bridge"], prefix),
                                        "port": f"p{attach['port']}"}
    plan = {
        "name": name, "kind": node.kind, "ghost": node.ghost,
        "namespace": exp.namespace(name, prefix), "hostname": name,
        "startcmd": node.startcmd or "",
        "forwarding": len(node.interfaces) > 1,
        "interfaces": interfaces,
        "routes": [{"dest": r.dest, "gateway": r.gateway} for r in node.routes],
        "os": node.os or "", "hardware": node.hardware or "",
        "attributes": dict(node.attributes),
    }
    if node.attributes.get("containers:cpus"):  # the CPUs the node's processes run on (process nodes)
        plan["cpus"] = node.attributes["containers:cpus"]
    if node.kind == "openvz":
        plan["openvz_template"] = node.attributes.get("containers:openvz_template") or \
            options.openvz_template or options.site.get("openvz_template", "")
        plan["openvz_diskspace"] = node.attributes.get("containers:openvz_diskspace") or \
            options.openvz_diskspace or options.site.get("openvz_diskspace", "")
    if node.kind == "qemu":
        plan["qemu_url"] = node.attributes.get("containers:qemu_url") or options.site.get("qemu_url", "")
        plan["qemu_arch"] = node.attributes.get("containers:qemu_arch") or options.site.get("qemu_arch", "")
    return plan


def pnode_paths(root: str, exp_name: str, exp_tag: str) -> dict[str, str]:
    """Where the experiment lives on a pnode, decided here once (docs/experiment-directory.md).

    The run directory is named by the short tag: the VDE sockets below it must stay under the
    107-byte limit of a socket path.
    """
    config_dir = f"{root}/config/{exp_name}"
    return {
        "containerize_run_dir": f"{root}/run/{exp_tag}",
        "containerize_config_dir": config_dir,
        "containerize_scripts_dir": f"{config_dir}/scripts",
        "containerize_log_dir": f"{root}/log/{exp_name}",
        "containerize_nodes_dir": f"{root}/nodes/{exp_name}",
    }


def write_inventory(exp: Experiment, out: Path) -> None:
    options = exp.options
    inv = out / "inventory"
    assignment = exp.partitioning.assignment
    target = options.site.get("target", "local")
    dump({"plugin": "containerize.deploy.containerize", "experiment_dir": ".."}, inv / "containerize.yml", HEADER)
    dump({
        "project": options.project, "group": options.group, "experiment": options.experiment,
        "target": target,
        "pnode_host_pattern": options.site.get("pnode_host_pattern", ""),
        "pnodes": {p: {"kinds": sorted({exp.topology.nodes[n].kind for n in names}), "nodes": names,
                       "types": exp.partitioning.pnode_types[p],
                       **({"host": options.pnode_hosts[i]["host"]} if options.pnode_hosts else {})}
                   for i, (p, names) in enumerate(assignment.items())},
        "nodes": {n.name: {"kind": n.kind, "pnode": n.pnode, "partition": n.partition, "ghost": n.ghost}
                  for n in exp.topology.nodes.values()},
    }, out / "embedding.yaml", HEADER)
    dump({
        "containerize_project": options.project,
        "containerize_group": options.group,
        "containerize_experiment": options.experiment,
        "containerize_exp_name": exp.name,
        "containerize_exp_tag": exp.tag,
        "containerize_shaping": "end_node" if options.end_node_shaping else "switch",
        "containerize_crossing_substrates": exp.crossing,
        "containerize_qemu_prefer_users": options.qemu_prefer_users,
        "containerize_openvz_template_dirs": options.openvz_template_dir or
        [options.site.get("openvz_template_dir", "")],
        "containerize_hosts": hosts_entries(exp),
        "containerize_site": dict(sorted(options.site.items())),
    }, inv / "group_vars" / "all.yml", HEADER, vars_file=True)
    hosts = [h["host"] for h in options.pnode_hosts[:len(assignment)]]
    for index, (pnode, names) in enumerate(assignment.items()):
        net = exp.networks[pnode]
        root, prefix = exp.pnode_place(pnode)
        pnet = net.pnet
        if hosts and pnet:  # the experiment interface is the one that routes to the other hosts
            pnet = {**pnet, "route_to": [h for h in hosts if h != hosts[index]]}
        dump({
            # --pnode-hosts: the host, and its own Ansible variables (a topology cannot set these)
            **({**options.pnode_hosts[index]["vars"], "ansible_host": hosts[index]} if hosts else {}),
            "containerize_pnode": pnode,
            "containerize_pnode_index": index,
            "containerize_root": root,
            "containerize_prefix": prefix,
            **pnode_paths(root, exp.name, exp.tag),
            "containerize_kinds": sorted({exp.topology.nodes[n].kind for n in names}),
            "containerize_switches": net.switches,
            "containerize_wirefilters": net.wirefilters,
            "containerize_pnet": pnet,
            "containerize_uplinks": net.uplinks,
            "containerize_nodes": [node_vars(exp, pnode, n) for n in names],
        }, inv / "host_vars" / f"{pnode}.yml", HEADER, vars_file=True)
