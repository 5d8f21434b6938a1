"""A small rtnetlink client: links, IPv4 addresses and routes, root tbf qdiscs, in any network namespace.

Why: configuring hundreds of namespaces with `ip`/`tc` costs a process spawn (~5 ms) per command; the same
requests sent over one NETLINK_ROUTE socket cost tens of microseconds. The requests are built as `ip` and
`tc` (iproute2) build them, so the kernel ends up in the same state and `ip`/`tc` show the same thing.

Written from the kernel UAPI headers (linux/netlink.h, rtnetlink.h, if_link.h, if_addr.h, pkt_sched.h).
Standard library only: it runs on the pnode's Python. One Rtnl per thread; it is not thread-safe.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import ipaddress
import os
import socket
import struct

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import Closing
from ansible_collections.containerize.deploy.plugins.module_utils.tc_tbf import tbf_parameters

CLONE_NEWNET = 0x40000000

# linux/netlink.h
NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NLMSG_NOOP = 1
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_CAPPED = 0x100  # in an NLMSG_ERROR: only the request's header is echoed
NLM_F_ACK_TLVS = 0x200  # in an NLMSG_ERROR: extended-ack attributes follow
NLMSGERR_ATTR_MSG = 1
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER

# linux/rtnetlink.h
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
RTM_NEWROUTE, RTM_DELROUTE, RTM_GETROUTE = 24, 25, 26
RTM_NEWQDISC, RTM_DELQDISC = 36, 37
RT_TABLE_MAIN = 254
RTPROT_UNSPEC, RTPROT_KERNEL, RTPROT_BOOT = 0, 2, 3
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK, RT_SCOPE_HOST, RT_SCOPE_NOWHERE = 0, 253, 254, 255
RTN_UNSPEC, RTN_UNICAST = 0, 1
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
TCA_KIND, TCA_OPTIONS = 1, 2

# linux/if_link.h, linux/if.h
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_QDISC, IFLA_EXT_MASK = 1, 3, 4, 10, 6, 29
RTEXT_FILTER_SKIP_STATS = 1 << 3  # leave the (large) counters out of link replies
IFLA_LINKINFO, IFLA_NET_NS_FD, IFLA_AF_SPEC = 18, 28, 26
IFLA_NUM_TX_QUEUES, IFLA_NUM_RX_QUEUES = 31, 32
IFLA_INET6_CONF = 2  # in IFLA_AF_SPEC's AF_INET6: the interface's ipv6 sysctls, an array of s32 (linux/ipv6.h)
DEVCONF_DISABLE_IPV6 = 26  # net.ipv6.conf.IF.disable_ipv6 in that array
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1  # linux/veth.h
IFF_UP = 0x1
IFNAMSIZ = 16

# linux/if_addr.h
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4

# linux/pkt_sched.h
TC_H_ROOT = 0xFFFFFFFF
TCA_TBF_PARMS, TCA_TBF_RTAB, TCA_TBF_RATE64, TCA_TBF_BURST = 1, 2, 4, 6

# struct layouts (native byte order, as the kernel reads them)
NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
NLATTR = struct.Struct("=HH")  # len, type
IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
TCMSG = struct.Struct("=BxxxiIII")  # family, ifindex, handle, parent, info

RECV_BUFFER = 65536
DUMP_TRIES = 5


# --- namespaces ------------------------------------------------------------------------------------------

_libc = None


def _setns(fd, what):
    """setns(2) on this thread; OSError(errno, WHAT: reason) when it fails."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


@contextlib.contextmanager
def in_netns(path):
    """Move this thread into the network namespace at PATH (e.g. /run/netns/NAME) for the with-block, and back.

    Namespaces are per thread, so other threads stay where they are; processes and threads started from this
    thread in the block, and Rtnl sockets created in it, belong to PATH's namespace. OSError when PATH cannot be
    opened or entered; RuntimeError when the thread cannot return (it must not go on in the wrong one).
    """
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise OSError(exc.errno, f"open netns {path}: {os.strerror(exc.errno)}") from None
        try:
            _setns(target, f"setns {path}")
        finally:
            os.close(target)
        try:
            yield
        finally:
            try:
                _setns(home, "setns back to the original network namespace")
            except OSError as exc:
                raise RuntimeError(str(exc)) from exc
    finally:
        os.close(home)


# --- message building and parsing ------------------------------------------------------------------------


def _attr(kind, payload):
    """One netlink attribute, padded to 4 bytes."""
    length = NLATTR.size + len(payload)
    return NLATTR.pack(length, kind) + payload + b"\0" * (-length % 4)


def _u32(value):
    return struct.pack("=I", value)


# A veth side with one queue each way, as the kernel runs it anyway (veth keeps one real RX queue). Left
# to the default (a queue per possible CPU), the new pair's real TX queues are cut to that one, and the
# kernel waits for an RCU grace period holding the rtnl lock: ~0.5 ms a pair, behind which every other
# link change of the pnode waits (a 100-node swap-in spent ~0.1 s there).
ONE_QUEUE = _attr(IFLA_NUM_TX_QUEUES, _u32(1)) + _attr(IFLA_NUM_RX_QUEUES, _u32(1))


def _attrs(data, offset=0):
    """{type: payload} of the attributes in DATA from OFFSET (the last one wins, as iproute2 does)."""
    found = {}
    end = len(data)
    while offset + NLATTR.size <= end:
        length, kind = NLATTR.unpack_from(data, offset)
        if length < NLATTR.size or offset + length > end:
            break
        found[kind & NLA_TYPE_MASK] = bytes(data[offset + NLATTR.size : offset + length])
        offset += (length + 3) & ~3
    return found


def _get_u32(attrs, kind, default=None):
    value = attrs.get(kind)
    return struct.unpack("=I", value[:4])[0] if value is not None and len(value) >= 4 else default


def _get_str(attrs, kind):
    value = attrs.get(kind)
    return None if value is None else value.split(b"\0", 1)[0].decode(errors="replace")


def _ifname_attr(ifname):
    """IFLA_IFNAME for IFNAME; OSError ENODEV for a name no interface can have."""
    encoded = ifname.encode() if isinstance(ifname, str) else b""
    if not encoded or len(encoded) >= IFNAMSIZ or b"\0" in encoded:
        raise OSError(errno.ENODEV, f"index {ifname!r}: {os.strerror(errno.ENODEV)}")
    return _attr(IFLA_IFNAME, encoded + b"\0")


def _ipv4_interface(cidr, what):
    try:
        return ipaddress.IPv4Interface(cidr)
    except ValueError as exc:
        raise OSError(errno.EINVAL, f"{what}: {exc}") from None


def _route_dest(dest, what):
    """(network bytes, prefix length) of DEST: "default" or an IPv4 network in CIDR form."""
    if dest in (None, "default"):
        return b"", 0
    try:
        network = ipaddress.IPv4Network(dest, strict=False)
    except ValueError as exc:
        raise OSError(errno.EINVAL, f"{what}: {exc}") from None
    return network.network_address.packed, network.prefixlen


def _mac_text(raw):
    return ":".join(f"{byte:02x}" for byte in raw) if raw else None


def _mac_bytes(mac, what):
    try:
        raw = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    except (ValueError, AttributeError):
        raw = b""
    if not raw:
        raise OSError(errno.EINVAL, f"{what}: not a link-layer address")
    return raw


def tbf_options(rate_bps, burst_bytes, latency_us):
    """TCA_OPTIONS payload of `tc qdisc ... tbf rate RATE_BPS bit burst BURST_BYTES latency LATENCY_US us`."""
    qopt, rate64, rtab = tbf_parameters(rate_bps, burst_bytes, latency_us)
    body = _attr(TCA_TBF_PARMS, qopt) + _attr(TCA_TBF_BURST, _u32(burst_bytes))
    if rate64 >= 1 << 32:
        body += _attr(TCA_TBF_RATE64, struct.pack("=Q", rate64))
    return body + _attr(TCA_TBF_RTAB, rtab)


# --- the socket ------------------------------------------------------------------------------------------


class Rtnl(Closing):
    """One NETLINK_ROUTE socket.

    A socket belongs to the namespace of the thread that created it, for its whole life: create it inside
    in_netns() and it keeps acting on that namespace after the thread goes home. Every request waits for
    the kernel's answer; a refusal raises OSError(errno, "<what>: <reason>").
    """

    def __init__(self):
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        try:
            for option in (NETLINK_CAP_ACK, NETLINK_EXT_ACK):  # short acks that carry the kernel's reason
                with contextlib.suppress(OSError):
                    self._sock.setsockopt(SOL_NETLINK, option, 1)
            self._sock.bind((0, 0))
        except BaseException:
            self._sock.close()
            raise
        self._seq = int.from_bytes(os.urandom(2), "little") << 8

    def close(self):
        self._sock.close()

    # --- transport ---------------------------------------------------------------------------------------

    def _request(self, what, msg_type, flags, body, dump=False):
        """Send one request and collect [(type, payload)] of its answers until its ACK (or NLMSG_DONE)."""
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        seq = self._seq
        flags |= NLM_F_REQUEST | NLM_F_ACK | (NLM_F_DUMP if dump else 0)
        self._sock.sendto(NLMSGHDR.pack(NLMSGHDR.size + len(body), msg_type, flags, seq, 0) + body, (0, 0))
        replies = []
        interrupted = False
        while True:
            data = self._sock.recv(RECV_BUFFER)
            offset = 0
            while offset + NLMSGHDR.size <= len(data):
                length, kind, msg_flags, msg_seq, _pid = NLMSGHDR.unpack_from(data, offset)
                if length < NLMSGHDR.size or offset + length > len(data):
                    break
                payload = data[offset + NLMSGHDR.size : offset + length]
                offset += (length + 3) & ~3
                if msg_seq != seq or kind == NLMSG_NOOP:
                    continue  # stale: an answer to an earlier request
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else errno.EPROTO
                    if code:
                        raise _kernel_error(what, code, msg_flags, payload)
                    return replies, interrupted
                if kind == NLMSG_DONE:
                    code = -struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else 0
                    if code:
                        raise _kernel_error(what, code, msg_flags, payload)
                    return replies, interrupted
                interrupted = interrupted or bool(msg_flags & NLM_F_DUMP_INTR)
                replies.append((kind, payload))

    def _do(self, what, msg_type, flags, body):
        return self._request(what, msg_type, flags, body)[0]

    def _dump(self, what, msg_type, body):
        """All messages of a dump; repeated when the kernel says it changed under it (NLM_F_DUMP_INTR)."""
        for _ in range(DUMP_TRIES):
            replies, interrupted = self._request(what, msg_type, 0, body, dump=True)
            if not interrupted:
                return replies
        raise OSError(errno.EAGAIN, f"{what}: dump kept being interrupted by changes")

    # --- links ---------------------------------------------------------------------------------------------

    def links(self):
        """{ifname: {"index", "mac" (lowercase, None without one), "up" (IFF_UP), "qdisc", "mtu", "ipv6_disabled",
        "master" (the ifindex of its bridge, None when enslaved to none)}}.

        ipv6_disabled is the interface's net.ipv6.conf.IF.disable_ipv6 (None in a kernel without IPv6): read
        here, it costs no visit to the namespace's /proc/sys."""
        body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _attr(IFLA_EXT_MASK, _u32(RTEXT_FILTER_SKIP_STATS))
        found = {}
        for kind, payload in self._dump("link dump", RTM_GETLINK, body):
            if kind != RTM_NEWLINK or len(payload) < IFINFOMSG.size:
                continue
            _family, _type, index, flags, _change = IFINFOMSG.unpack_from(payload)
            attrs = _attrs(payload, IFINFOMSG.size)
            name = _get_str(attrs, IFLA_IFNAME)
            if name is None:
                continue
            found[name] = {
                "index": index,
                "mac": _mac_text(attrs.get(IFLA_ADDRESS)),
                "up": bool(flags & IFF_UP),
                "qdisc": _get_str(attrs, IFLA_QDISC),
                "mtu": _get_u32(attrs, IFLA_MTU),
                "ipv6_disabled": _ipv6_disabled(attrs),
                "master": _get_u32(attrs, IFLA_MASTER) or None,
            }
        return found

    def _names(self):
        return {link["index"]: name for name, link in self.links().items()}

    def index(self, ifname):
        """The ifindex of IFNAME in this socket's namespace; OSError ENODEV when there is none."""
        body = (
            IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
            + _ifname_attr(ifname)
            + _attr(IFLA_EXT_MASK, _u32(RTEXT_FILTER_SKIP_STATS))
        )
        for kind, payload in self._do(f"index {ifname}", RTM_GETLINK, 0, body):
            if kind == RTM_NEWLINK and len(payload) >= IFINFOMSG.size:
                return IFINFOMSG.unpack_from(payload)[2]
        raise OSError(errno.ENODEV, f"index {ifname}: {os.strerror(errno.ENODEV)}")

    def link_set(self, ifname, up=None, mac=None, master=None):
        """Like `ip link set dev IFNAME [address MAC] [master MASTER] [up|down]` (one request; MASTER an ifindex)."""
        if up is None and mac is None and master is None:
            return
        what = f"link set dev {ifname}" + (f" address {mac}" if mac else "") + (f" master {master}" if master else "")
        what += "" if up is None else " up" if up else " down"
        flags = IFF_UP if up else 0
        change = 0 if up is None else IFF_UP
        body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, flags, change) + _ifname_attr(ifname)
        if mac is not None:
            body += _attr(IFLA_ADDRESS, _mac_bytes(mac, what))
        if master is not None:
            body += _attr(IFLA_MASTER, _u32(master))
        self._do(what, RTM_NEWLINK, 0, body)

    def veth_add(self, ifname, peer, peer_netns, master=None, up=False):
        """Like `ip link add IFNAME [master MASTER] [up] type veth peer name PEER netns PEER_NETNS` (a path
        such as /run/netns/NAME): a pair of linked interfaces, IFNAME here and PEER there (down).
        OSError EEXIST when a name is taken on either side."""
        what = f"link add {ifname} type veth peer name {peer} netns {peer_netns}"
        fd = os.open(peer_netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            peer_info = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _ifname_attr(peer) + ONE_QUEUE
            peer_info += _attr(IFLA_NET_NS_FD, _u32(fd))
            self._link_add(what, ifname, b"veth\0", _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_info)), master, up,
                           ONE_QUEUE)
        finally:
            os.close(fd)

    def bridge_add(self, ifname):
        """Like `ip link add IFNAME up type bridge` (the kernel's defaults: no STP, so a new port forwards at once)."""
        self._link_add(f"link add {ifname} up type bridge", ifname, b"bridge\0", b"", None, True)

    def _link_add(self, what, ifname, kind, data, master, up, attrs=b""):
        flags = IFF_UP if up else 0
        body = IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, flags, flags) + _ifname_attr(ifname) + attrs
        body += _attr(IFLA_LINKINFO, _attr(IFLA_INFO_KIND, kind) + data)
        if master is not None:
            body += _attr(IFLA_MASTER, _u32(master))
        self._do(what, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)

    def link_del(self, ifname):
        """Like `ip link del IFNAME` (a veth goes with its peer). OSError ENODEV when there is none."""
        self._do(
            f"link del {ifname}", RTM_DELLINK, 0, IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0) + _ifname_attr(ifname)
        )

    # --- addresses -----------------------------------------------------------------------------------------

    def addresses(self, names=None):
        """{ifname: ["10.0.0.1/24", ...] sorted} of the IPv4 addresses (interfaces without one left out).

        NAMES ({ifindex: ifname}) saves a link dump when the caller has one (links())."""
        body = IFADDRMSG.pack(socket.AF_INET, 0, 0, 0, 0)
        found = {}
        replies = self._dump("addr dump", RTM_GETADDR, body)
        if names is None:
            names = self._names() if replies else {}
        for kind, payload in replies:
            if kind != RTM_NEWADDR or len(payload) < IFADDRMSG.size:
                continue
            family, prefixlen, _flags, _scope, index = IFADDRMSG.unpack_from(payload)
            attrs = _attrs(payload, IFADDRMSG.size)
            local = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
            if family != socket.AF_INET or local is None or len(local) != 4:
                continue
            name = names.get(index, f"if{index}")
            found.setdefault(name, []).append(f"{ipaddress.IPv4Address(local)}/{prefixlen}")
        for cidrs in found.values():
            cidrs.sort(key=lambda cidr: ipaddress.IPv4Interface(cidr))
        return found

    def _addr_body(self, ifname, interface, broadcast):
        ip = interface.ip
        scope = RT_SCOPE_HOST if ip.packed[0] == 127 else RT_SCOPE_UNIVERSE  # ip's default_scope()
        body = IFADDRMSG.pack(socket.AF_INET, interface.network.prefixlen, 0, scope, self.index(ifname))
        body += _attr(IFA_LOCAL, ip.packed) + _attr(IFA_ADDRESS, ip.packed)
        if broadcast and interface.network.prefixlen <= 30:
            body += _attr(IFA_BROADCAST, interface.network.broadcast_address.packed)
        return body

    def addr_add(self, ifname, cidr):
        """Like `ip addr add CIDR broadcast + dev IFNAME` (no broadcast for /31 and /32); EEXIST if present."""
        what = f"addr add {cidr} dev {ifname}"
        body = self._addr_body(ifname, _ipv4_interface(cidr, what), broadcast=True)
        self._do(what, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)

    def addr_del(self, ifname, cidr):
        """Like `ip addr del CIDR dev IFNAME`; EADDRNOTAVAIL if absent."""
        what = f"addr del {cidr} dev {ifname}"
        body = self._addr_body(ifname, _ipv4_interface(cidr, what), broadcast=False)
        self._do(what, RTM_DELADDR, 0, body)

    # --- routes --------------------------------------------------------------------------------------------

    def routes(self, names=None):
        """[{"dest", "gateway", "dev"}] of the IPv4 unicast routes of table main not made by the kernel.

        NAMES ({ifindex: ifname}) saves a link dump when the caller has one (links())."""
        body = RTMSG.pack(socket.AF_INET, 0, 0, 0, 0, 0, 0, 0, 0)
        found = []
        for kind, payload in self._dump("route dump", RTM_GETROUTE, body):
            if kind != RTM_NEWROUTE or len(payload) < RTMSG.size:
                continue
            family, dst_len, _src, _tos, table, protocol, _scope, rtype, _flags = RTMSG.unpack_from(payload)
            attrs = _attrs(payload, RTMSG.size)
            table = _get_u32(attrs, RTA_TABLE, table)
            if family != socket.AF_INET or table != RT_TABLE_MAIN or rtype != RTN_UNICAST or protocol == RTPROT_KERNEL:
                continue
            if names is None:
                names = self._names()
            dst = attrs.get(RTA_DST, b"\0\0\0\0")
            gateway = attrs.get(RTA_GATEWAY)
            oif = _get_u32(attrs, RTA_OIF)
            found.append({
                "dest": "default" if dst_len == 0 else f"{ipaddress.IPv4Address(dst)}/{dst_len}",
                "gateway": str(ipaddress.IPv4Address(gateway)) if gateway and len(gateway) == 4 else None,
                "dev": None if oif is None else names.get(oif, f"if{oif}"),
            })  # fmt: skip
        return found

    def _route_body(self, dest, gateway, dev, what, delete):
        dst, dst_len = _route_dest(dest, what)
        if delete:  # like ip: match any protocol, scope and type
            protocol, scope, rtype = RTPROT_UNSPEC, RT_SCOPE_NOWHERE, RTN_UNSPEC
        else:
            protocol, rtype = RTPROT_BOOT, RTN_UNICAST
            scope = RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK
        body = RTMSG.pack(socket.AF_INET, dst_len, 0, 0, RT_TABLE_MAIN, protocol, scope, rtype, 0)
        if dst_len:
            body += _attr(RTA_DST, dst)
        if gateway:
            try:
                body += _attr(RTA_GATEWAY, ipaddress.IPv4Address(gateway).packed)
            except ValueError as exc:
                raise OSError(errno.EINVAL, f"{what}: {exc}") from None
        if dev:
            body += _attr(RTA_OIF, _u32(self.index(dev)))
        return body

    @staticmethod
    def _route_what(verb, dest, gateway, dev):
        return f"route {verb} {dest}" + (f" via {gateway}" if gateway else "") + (f" dev {dev}" if dev else "")

    def route_replace(self, dest, gateway=None, dev=None):
        """Like `ip route replace DEST [via GATEWAY] [dev DEV]` in table main (DEST "default" or a CIDR)."""
        what = self._route_what("replace", dest, gateway, dev)
        body = self._route_body(dest, gateway, dev, what, delete=False)
        self._do(what, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, body)

    def route_del(self, dest, gateway=None, dev=None):
        """Like `ip route del DEST [via GATEWAY] [dev DEV]` in table main; ESRCH if there is no such route."""
        what = self._route_what("del", dest, gateway, dev)
        body = self._route_body(dest, gateway, dev, what, delete=True)
        self._do(what, RTM_DELROUTE, 0, body)

    # --- qdiscs --------------------------------------------------------------------------------------------

    def qdisc_replace_tbf(self, ifname, rate_bps, burst_bytes, latency_us):
        """Send what `tc qdisc replace dev IFNAME root tbf rate RATE_BPSbit burst BURST latency LATENCY` sends.

        RATE_BPS is in bits per second (tc's "bit"), LATENCY_US in microseconds.
        """
        what = f"qdisc replace dev {ifname} root tbf rate {rate_bps}bit burst {burst_bytes} latency {latency_us}us"
        try:
            options = tbf_options(rate_bps, burst_bytes, latency_us)
        except ValueError as exc:
            raise OSError(errno.EINVAL, f"{what}: {exc}") from None
        body = TCMSG.pack(socket.AF_UNSPEC, self.index(ifname), 0, TC_H_ROOT, 0)
        body += _attr(TCA_KIND, b"tbf\0") + _attr(TCA_OPTIONS, options)
        self._do(what, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_REPLACE, body)

    def qdisc_del_root(self, ifname):
        """Like `tc qdisc del dev IFNAME root`: the device goes back to its default qdisc."""
        what = f"qdisc del dev {ifname} root"
        body = TCMSG.pack(socket.AF_UNSPEC, self.index(ifname), 0, TC_H_ROOT, 0)
        self._do(what, RTM_DELQDISC, 0, body)


def _ipv6_disabled(attrs):
    """disable_ipv6 of a link's attributes ATTRS (IFLA_AF_SPEC, AF_INET6, IFLA_INET6_CONF); None without it."""
    spec = attrs.get(IFLA_AF_SPEC)
    inet6 = _attrs(spec).get(socket.AF_INET6) if spec else None
    conf = _attrs(inet6).get(IFLA_INET6_CONF) if inet6 else None
    offset = DEVCONF_DISABLE_IPV6 * 4
    if not conf or len(conf) < offset + 4:
        return None
    return struct.unpack_from("=i", conf, offset)[0] != 0


def _kernel_error(what, code, flags, payload):
    """OSError(CODE, "WHAT: strerror") plus the kernel's own words when it sent an extended ack."""
    message = f"{what}: {os.strerror(code)}"
    if flags & NLM_F_ACK_TLVS and len(payload) >= 4 + NLMSGHDR.size:
        echoed = NLMSGHDR.size if flags & NLM_F_CAPPED else NLMSGHDR.unpack_from(payload, 4)[0]
        reason = _get_str(_attrs(payload, 4 + ((echoed + 3) & ~3)), NLMSGERR_ATTR_MSG)
        if reason:
            message += f" ({reason})"
    return OSError(code, message)
