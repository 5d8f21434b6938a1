"""The DETER commands of an ns2 file (``$ns ...``, ``tb-*``, node methods) as the reader's methods.

Each ``sim_*``, ``node_*`` and ``tb_*`` method is aliased into the safe Tcl interpreter by
ns2.py's ``_Reader._register_all``; this mixin holds them so that the reader itself is only the
interpreter, the objects' bookkeeping and the model at the end.
"""

from __future__ import annotations

import ipaddress
import re

from ..errors import ContainerizeError
from ..model import RTPROTOS, Shaping
from ..units import parse_bandwidth, parse_delay, parse_loss
from .attributes import near_miss, warn_near_miss
from .ns2_objects import _address, _LanLink, _Node, _value


class _Commands:
    """The command handlers of _Reader (ns2.py)."""

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
