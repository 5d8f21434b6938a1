"""The commands an ns2 file runs (``new``, ``source``, ``unknown``, ``$ns ...``, ``tb-*``, node
methods) as the reader's methods, and which of them are refused or skipped.

``_register_all`` aliases them into the safe Tcl interpreter through ns2.py's ``_Reader._register``;
this mixin holds them so that the reader itself is only the interpreter, the objects' bookkeeping and
the model at the end.
"""

from __future__ import annotations

import ipaddress
import os
import re

from ..errors import ContainerizeError
from ..model import RTPROTOS, Shaping
from ..units import parse_bandwidth, parse_delay, parse_loss
from .attributes import near_miss, warn_near_miss
from .ns2_objects import _address, _arity, _LanLink, _Node, _Obj, _value, _var_to_name, _wrong_args

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
NAMED_KINDS = ("node", "link", "lan")
HIDDEN = ("after", "vwait", "interp")  # would block, or make interpreters without our limits
FORBIDDEN = frozenset({
    "exec", "open", "socket", "file", "load", "unload", "cd", "pwd", "glob", "exit", "fconfigure",
    "encoding", *HIDDEN,
})
# Roots of ns-2 classes whose objects are accepted and ignored, with why.
SKIPPED_CLASSES = {
    "Agent": "traffic agents are not modelled",
    "Application": "traffic generators are not modelled; use start commands",
    "Queue": "queue settings are not modelled",
    "EventGroup": "events are not modelled",
    "Program": "program agents are not modelled; use start commands",
}
SKIPPED_SIM = {
    "at": "scheduled events are not modelled",
    **dict.fromkeys(("attach-agent", "detach-agent", "connect"), "traffic agents are not modelled"),
    **dict.fromkeys(("trace-all", "namtrace-all", "trace-queue", "namtrace-queue", "monitor-queue",
                     "flush-trace", "color", "duplex-link-op", "simplex-link-op", "use-scheduler"),
                    "simulator output is not modelled"),
    "queue-limit": "queue settings are not modelled",
    "cost": "routing costs are not modelled",
    **dict.fromkeys(("event-timeline", "event-sequence", "event-group"), "events are not modelled"),
    **dict.fromkeys(("halt", "now"), "there is no simulation"),
}
# Testbed commands that have no effect on containers: accepted with a warning.
SKIPPED_TB = (
    "tb-set-sync-server", "tb-use-endnodequeue", "tb-use-endnodeshaping", "tb-force-endnodeshaping",
    "tb-set-endnodeshaping", "tb-set-noshaping", "tb-set-multiplexed", "tb-set-useveth",
    "tb-set-vlink-emulation", "tb-set-node-rpms", "tb-set-node-tarfiles", "tb-set-node-cmdline",
    "tb-set-node-deltas", "tb-set-node-failure-action", "tb-fix-node", "tb-fix-interface",
    "tb-set-uselatestwadata", "tb-set-usewatunnels", "tb-set-wasolver-weights", "tb-set-allowcolocate",
    "tb-set-colocate-factor", "tb-set-mem-usage", "tb-set-cpu-usage", "tb-set-ip-routing",
    "tb-bind-parent", "tb-fix-current-resources", "tb-set-encapsulate", "tb-set-jail-os",
    "tb-set-delay-os", "tb-set-link-est-bandwidth", "tb-set-lan-est-bandwidth", "tb-set-link-backfill",
    "tb-set-lan-backfill", "tb-set-lan-protocol", "tb-set-link-protocol", "tb-set-link-encap",
    "tb-set-node-memory-size", "tb-set-node-usesharednode", "tb-set-security-level",
    "tb-set-lan-simplex-params", "tb-set-node-lan-setting", "tb-set-lan-setting",
    "tb-set-lan-accesspoint", "tb-set-node-plab-role", "tb-set-node-plab-plcnet",
    # the rest of Emulab's tb_compat.tcl that a container experiment cannot honour: services and their hooks,
    # software to load, boot command lines, experiment tarballs, assignment and delay-node hints, elab-in-elab
    "tb-add-node-service", "tb-add-node-service-hook", "tb-set-node-loadlist", "tb-set-tarfiles",
    "tb-set-link-simplex-backfill", "tb-set-node-lan-backfill", "tb-set-node-lan-est-bandwidth",
    "tb-set-nonfs", "tb-set-use-ipassign", "tb-set-ipassign-args", "tb-set-uselinkdelays",
    "tb-set-forcelinkdelays", "tb-set-prefer-vlans", "tb-set-dpdb", "tb-set-node-id", "tb-set-node-routable-ip",
    "tb-set-link-nobwshaping", "tb-set-lan-nobwshaping", "tb-set-link-layer", "tb-set-lan-layer",
    "tb-set-link-multiplexed", "tb-set-lan-multiplexed", "tb-set-node-sharingmode", "tb-set-node-dataset",
    "tb-set-simnode-os", "tb-set-node-simnode", "tb-set-node-inner-elab-role", "tb-set-inner-elab-eins",
    "tb-elab-in-elab", "tb-elab-in-elab-topology", "tb-set-elabinelab-cvstag", "tb-set-elabinelab-attribute",
    "tb-unset-elabinelab-attribute", "tb-set-elabinelab-role-attribute", "tb-unset-elabinelab-role-attribute",
    "tb-set-node-firewall", "tb-set-firewall-style", "tb-set-node-role",
)


class _Commands:
    """The command handlers of _Reader (ns2.py)."""

    def _register_all(self) -> None:
        reg = self._register
        reg("new", self.cmd_new, "className ?args?")
        reg("source", self.cmd_source, "?-encoding name? fileName")
        reg("puts", lambda *args: None, "?-nonewline? ?channelId? string")  # printing is the CLI's job
        reg("unknown", self.cmd_unknown, "cmdName ?args?")
        reg("::tb::name", self.cmd_name, "handle varName")
        reg("::tb::procline", self.cmd_procline, "procName line")
        reg("tb-set-ip", self.tb_set_ip, "node ip")
        reg("tb-set-ip-link", self.tb_set_ip_link, "node link ip")
        reg("tb-set-ip-lan", self.tb_set_ip_lan, "node lan ip")
        reg("tb-set-ip-interface", self.tb_set_ip_interface, "node dst ip")
        reg("tb-set-netmask", self.tb_set_netmask, "lanlink netmask")
        reg("tb-set-node-os", self.tb_set_node_os, "node os ?args?")
        reg("tb-set-hardware", self.tb_set_hardware, "node type ?args?")
        reg("tb-make-soft-vtype", self.tb_make_vtype, "vtype types")
        reg("tb-make-hard-vtype", self.tb_make_vtype, "vtype types")
        reg("tb-make-weighted-vtype", self.tb_make_weighted_vtype, "vtype weight types")
        reg("tb-set-node-startcmd", self.tb_set_node_startcmd, "node command")
        reg("tb-set-node-startup", self.tb_set_node_startcmd, "node command")  # the old name
        reg("tb-add-node-attribute", self.tb_add_node_attribute, "node key value")
        reg("tb-set-link-loss", self.tb_set_link_loss, "link|src ?dst? loss")
        reg("tb-set-lan-loss", self.tb_set_lan_loss, "lan loss")
        reg("tb-set-node-lan-delay", self.tb_set_node_lan_delay, "node lan delay")
        reg("tb-set-node-lan-bandwidth", self.tb_set_node_lan_bandwidth, "node lan bandwidth")
        reg("tb-set-node-lan-loss", self.tb_set_node_lan_loss, "node lan loss")
        reg("tb-set-node-lan-params", self.tb_set_node_lan_params, "node lan delay bandwidth loss")
        reg("tb-set-link-simplex-params", self.tb_set_link_simplex_params, "link src delay bandwidth loss")
        for name in SKIPPED_TB:
            reg(name, lambda *args, name=name: self._skip(name, f"{name} (no effect on containers)"), "args")
        self.methods = {
            "sim": {
                "node": (self.sim_node, ""),
                "duplex-link": (self.sim_duplex_link, "node1 node2 bandwidth delay ?queue? ?args?"),
                "simplex-link": (self.sim_simplex_link, "args"),
                "make-lan": (self.sim_make_lan, "nodes bandwidth delay ?args?"),
                "make-cloud": (self.sim_make_lan, "nodes bandwidth delay ?args?"),  # Emulab: a shaped LAN
                "link": (self.sim_link, "node1 node2"),
                "lanlink": (self.sim_lanlink, "lan node"),
                "rtproto": (self.sim_rtproto, "protocol ?args?"),
                "run": (lambda *args: None, "?args?"),
            },
            "node": {"add-route": (self.node_add_route, "dst nexthop")},
        }
        for table in self.methods.values():
            for method, (func, usage) in table.items():
                table[method] = (func, usage, *_arity(usage))

    def cmd_new(self, cls: str, *args):
        if cls == "Simulator":
            return self._new(_Obj, "sim").handle
        root = cls.split("/", 1)[0]
        self._skip(f"new {root}", f"new {cls} ({SKIPPED_CLASSES.get(root, 'not modelled')})")
        return self.void.handle

    def cmd_source(self, *args):
        if len(args) == 2 or (len(args) == 3 and args[0] != "-encoding"):
            raise ContainerizeError('wrong # args: should be "source ?-encoding name? fileName"')
        if os.path.basename(args[-1]) != "tb_compat.tcl":
            raise ContainerizeError(f"source {args[-1]}: a topology file may only source tb_compat.tcl")

    def cmd_unknown(self, name: str, *args):
        obj = self.objs.get(name)
        if obj is not None:
            return self._method(obj, args)
        if name in FORBIDDEN:
            raise ContainerizeError(f"{name} is not allowed in a topology file "
                                    "(it cannot run programs, use files or sockets, or load code)")
        root = name.split("/", 1)[0]
        if "/" in name and root[:1].isupper():  # ns-2 class settings: Agent/TCP set window_ 20
            self._skip(f"new {root}", f"{name} ({SKIPPED_CLASSES.get(root, 'not modelled')})")
            return self.void.handle
        raise ContainerizeError(f'invalid command name "{name}"')

    def _method(self, obj: _Obj, args: tuple):
        shown = "$ns" if obj.kind == "sim" else f"${obj.kind}"
        if not args:
            raise _wrong_args(shown, "method ?arg ...?")
        method, args = args[0], args[1:]
        table = self.methods.get(obj.kind)
        entry = table.get(method) if table is not None else None
        if entry is not None:
            func, usage, low, high = entry
            if not low <= len(args) <= high:
                raise _wrong_args(f"{shown} {method}", usage)
            return func(obj, *args)
        if obj.kind == "void":  # agents and the like: everything they do is ignored
            return self.void.handle
        if obj.kind == "sim":
            if method not in SKIPPED_SIM:
                raise ContainerizeError(f'$ns {method}: unknown or unsupported Simulator method')
            self._skip(f"$ns {method}", f"$ns {method} ({SKIPPED_SIM[method]})")
            return self.void.handle
        if method == "queue":
            self._skip("queue", f"{shown} queue (queue settings are not modelled)")
        else:
            self._skip(f"{obj.kind} {method}", f"{shown} {method} (not modelled)")
        return self.void.handle

    def cmd_name(self, handle: str, var: str):
        """From the `set` wrapper: ``var`` (global) now holds ``handle``."""
        obj = self.objs.get(handle)
        if obj is None or obj.name is not None or obj.kind not in NAMED_KINDS:
            return
        var = var[2:] if var.startswith("::") else var
        name = _var_to_name(var)
        if not NAME_RE.match(name):
            raise ContainerizeError(f"cannot name the {obj.kind} after variable {var!r}: {name!r} is not a "
                                    "valid name (letters, digits and '-', starting with a letter or digit)")
        other = self.names.get(name)
        if other is not None:
            if other.var == var:  # a reused variable: it keeps naming the first object
                return
            raise ContainerizeError(f"duplicate name {name!r}: the {obj.kind} in variable {var!r} would take it, "
                                    f"but the {other.kind} created at line {other.line} has it already")
        obj.name, obj.var = name, var
        self.names[name] = obj

    def cmd_procline(self, name: str, line: str):
        """From the trace on `proc`: the body of proc ``name`` (qualified) starts at ``line``."""
        if line.isascii() and line.isdigit() and len(line) < 10:  # the file may call this itself
            self.procs[name.lstrip(":")] = int(line)

    # $ns ...

    def sim_node(self, sim):
        node = self._new(_Node, "node", line=self.where())
        self.nodes.append(node)
        return node.handle

    def sim_duplex_link(self, sim, a, b, bw, delay, queue="DropTail", *extra):
        cmd = "duplex-link"
        n1, n2 = self._node(a, cmd), self._node(b, cmd)
        if n1 is n2:
            raise ContainerizeError(f"{cmd}: both ends are {self._describe(n1)}; a link joins two nodes")
        line = self.where()
        link = self._new_sub("link", line, bw, delay, cmd)
        link.queue = queue
        self._attach(n1, link, line)
        self._attach(n2, link, line)
        return link.handle

    def sim_simplex_link(self, sim, *args):
        raise ContainerizeError("simplex-link is not supported: use duplex-link and "
                                "tb-set-link-simplex-params")

    def sim_make_lan(self, sim, members, bw, delay, *extra):
        cmd = "make-lan"
        refs = self._list(members, cmd)
        if not refs:
            raise ContainerizeError(f"{cmd}: the LAN has no nodes")
        nodes = [self._node(ref, cmd) for ref in refs]
        if len(set(nodes)) != len(nodes):
            twice = next(n for n in nodes if nodes.count(n) > 1)
            raise ContainerizeError(f"{cmd}: {self._describe(twice)} is listed twice")
        line = self.where()
        lan = self._new_sub("lan", line, bw, delay, cmd)
        for node in nodes:
            self._attach(node, lan, line)
        return lan.handle

    def sim_link(self, sim, a, b):
        n1, n2 = self._node(a, "link"), self._node(b, "link")
        link = self._link_between(n1, n2)
        if link is None:
            raise ContainerizeError(f"link: there is no link between {self._describe(n1)} and "
                                    f"{self._describe(n2)}")
        return link.handle

    def sim_lanlink(self, sim, lan_ref, node_ref):
        iface = self._node_and_sub(node_ref, lan_ref, "lanlink")
        key = (iface.sub, iface.node)
        if key not in self.lanlinks:
            self.lanlinks[key] = self._new(_LanLink, "lanlink", line=self.where(), lan=iface.sub,
                                           node=iface.node)
        return self.lanlinks[key].handle

    def sim_rtproto(self, sim, proto, *args):
        known = {p.lower(): p for p in RTPROTOS}
        if proto.lower() not in known:
            raise ContainerizeError(f"rtproto: unsupported routing {proto!r}; use {', '.join(RTPROTOS)}")
        self.topo.rtproto = known[proto.lower()]

    def node_add_route(self, node, dst, nexthop):
        dest = self._ref(dst, ("node", "link", "lan"), "add-route")
        hop = self._node(nexthop, "add-route")
        node.routes.append((dest, hop))

    # tb-* commands

    def tb_set_ip(self, node, ip):
        self._node(node, "tb-set-ip").ip = (_address(ip, "tb-set-ip"), self.where())

    def tb_set_ip_link(self, node, link, ip):
        cmd = "tb-set-ip-link"
        self._iface(self._node(node, cmd), self._sub(link, cmd), cmd).ip = _address(ip, cmd)

    def tb_set_ip_lan(self, node, lan, ip):
        cmd = "tb-set-ip-lan"
        self._iface(self._node(node, cmd), self._sub(lan, cmd), cmd).ip = _address(ip, cmd)

    def tb_set_ip_interface(self, node, dst, ip):
        cmd = "tb-set-ip-interface"
        src, peer = self._node(node, cmd), self._node(dst, cmd)
        for iface in src.ifaces:
            if any(m.node is peer for m in iface.sub.members):
                iface.ip = _address(ip, cmd)
                return
        raise ContainerizeError(f"{cmd}: no link or LAN joins {self._describe(src)} and "
                                f"{self._describe(peer)}")

    def tb_set_netmask(self, lanlink, mask):
        cmd = "tb-set-netmask"
        sub = self._sub(lanlink, cmd)
        try:
            if not re.fullmatch(r"\d+\.\d+\.\d+\.\d+", mask.strip()):
                raise ValueError
            sub.netmask = str(ipaddress.IPv4Network(f"0.0.0.0/{mask.strip()}").netmask)
        except ValueError:
            raise ContainerizeError(f"{cmd}: {mask!r} is not a netmask such as 255.255.255.0") from None

    def tb_set_node_os(self, node, os_name, *args):
        self._node(node, "tb-set-node-os").os = os_name

    def tb_set_hardware(self, node, hw, *args):
        self._node(node, "tb-set-hardware").hardware = hw

    def tb_make_vtype(self, name, types):
        self.topo.vtypes[name] = self._list(types, "tb-make-soft-vtype")

    def tb_make_weighted_vtype(self, name, weight, types):
        self.tb_make_vtype(name, types)

    def tb_set_node_startcmd(self, node, command):
        self._node(node, "tb-set-node-startcmd").startcmd = command

    def tb_add_node_attribute(self, node, key, value):
        rec = self._node(node, "tb-add-node-attribute")
        rec.attributes[key] = value
        if key not in self.misspelled and near_miss(key):
            line = self.where()
            warn_near_miss(self.topo.warnings, self.misspelled, key, f"{self.source}:{line}" if line else self.source,
                           f"tb-add-node-attribute {self._describe(rec)}")

    def tb_set_link_loss(self, first, *rest):
        cmd = "tb-set-link-loss"
        if len(rest) == 1:  # tb-set-link-loss link loss
            sub = self._sub(first, cmd)
        else:  # tb-set-link-loss src dst loss
            src, dst = self._node(first, cmd), self._node(rest[0], cmd)
            sub = self._link_between(src, dst)
            if sub is None:
                raise ContainerizeError(f"{cmd}: there is no link between {self._describe(src)} and "
                                        f"{self._describe(dst)}")
        sub.loss = _value(parse_loss, rest[-1], cmd)

    def tb_set_lan_loss(self, lan, loss):
        self._sub(lan, "tb-set-lan-loss").loss = _value(parse_loss, loss, "tb-set-lan-loss")

    def tb_set_node_lan_delay(self, a, b, delay):
        cmd = "tb-set-node-lan-delay"
        self._node_and_sub(a, b, cmd).delay = _value(parse_delay, delay, cmd)

    def tb_set_node_lan_bandwidth(self, a, b, bw):
        cmd = "tb-set-node-lan-bandwidth"
        self._node_and_sub(a, b, cmd).bandwidth = _value(parse_bandwidth, bw, cmd)

    def tb_set_node_lan_loss(self, a, b, loss):
        cmd = "tb-set-node-lan-loss"
        self._node_and_sub(a, b, cmd).loss = _value(parse_loss, loss, cmd)

    def tb_set_node_lan_params(self, a, b, delay, bw, loss):
        cmd = "tb-set-node-lan-params"
        iface = self._node_and_sub(a, b, cmd)
        iface.delay = _value(parse_delay, delay, cmd)
        iface.bandwidth = _value(parse_bandwidth, bw, cmd)
        iface.loss = _value(parse_loss, loss, cmd)

    def tb_set_link_simplex_params(self, link, src, delay, bw, loss):
        cmd = "tb-set-link-simplex-params"
        sub = self._sub(link, cmd, ("link",))
        iface = self._iface(self._node(src, cmd), sub, cmd)
        sub.simplex[iface.node] = Shaping(bandwidth=_value(parse_bandwidth, bw, cmd),
                                          delay=_value(parse_delay, delay, cmd),
                                          loss=_value(parse_loss, loss, cmd))
