"""module_utils/netlink against iproute2: each request must leave a scratch network namespace as the
`ip`/`tc` command it stands for leaves another one, read back with `ip -json` and `tc -json`.

Needs root (network namespaces) and iproute2; fast (a few namespaces per test).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import secrets
import shutil
import subprocess
import threading

import pytest

from ansible_collections.containerize.deploy.plugins.module_utils import netlink as nl

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("tc"), reason="needs root and iproute2"
)


LATENCY_US = 50000


def run(*argv: str, stdin: str | None = None) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, f"{' '.join(argv)}: {proc.stderr}"
    return proc.stdout


def ip_json(ns: str, *args: str) -> list:
    return json.loads(run("ip", "-n", ns, "-json", *args) or "[]")


def tc_qdiscs(ns: str, dev: str = "d0") -> list:
    """`tc -d -json qdisc show dev DEV` without the handles (the kernel numbers them from one global counter)."""
    shown = json.loads(run("tc", "-n", ns, "-d", "-json", "qdisc", "show", "dev", dev) or "[]")
    return [{key: value for key, value in qdisc.items() if key != "handle"} for qdisc in shown]


def ns_inode(path: str) -> int:
    return os.stat(path).st_ino


@pytest.fixture
def make_netns(request):
    """A factory of scratch namespaces, each with a veth pair d0/d1 (both down), deleted after the test."""

    def make() -> str:
        name = f"cznl-{secrets.token_hex(4)}"
        run("ip", "netns", "add", name)
        request.addfinalizer(lambda: subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False))
        run("ip", "-n", name, "link", "add", "d0", "type", "veth", "peer", "name", "d1")
        return name

    return make


@pytest.fixture
def netns(make_netns):
    return make_netns()


@pytest.fixture
def rtnl(netns):
    with nl.in_netns(f"/run/netns/{netns}"):
        sock = nl.Rtnl()
    with sock:
        yield sock


def ip_addresses(ns: str) -> dict:
    """{ifname: [(local, prefixlen, broadcast)]} of the IPv4 addresses as `ip -json addr` shows them."""
    return {
        link["ifname"]: [(a["local"], a["prefixlen"], a.get("broadcast")) for a in link["addr_info"]]
        for link in ip_addresses_raw(ns)
        if link["addr_info"]
    }


def ip_addresses_raw(ns: str) -> list:
    return ip_json(ns, "-4", "addr", "show")


def ip_routes(ns: str) -> list:
    return [r for r in ip_json(ns, "route", "show", "table", "main") if r.get("protocol") != "kernel"]


# --- links -----------------------------------------------------------------------------------------------


def test_link_set_up_and_mac_and_links_agree_with_ip(netns, rtnl):
    rtnl.link_set("d0", up=True, mac="02:00:00:AA:bb:0C")
    (d0,) = ip_json(netns, "link", "show", "dev", "d0")
    assert d0["address"] == "02:00:00:aa:bb:0c"
    assert "UP" in d0["flags"]

    links = rtnl.links()
    shown = ip_json(netns, "link", "show")
    assert sorted(links) == sorted(link["ifname"] for link in shown) == ["d0", "d1", "lo"]
    for link in shown:
        assert links[link["ifname"]] == {
            "index": link["ifindex"],
            "mac": link.get("address"),
            "up": "UP" in link["flags"],
            "qdisc": link.get("qdisc"),
            "mtu": link["mtu"],
            "ipv6_disabled": run("ip", "netns", "exec", netns, "cat",
                                 f"/proc/sys/net/ipv6/conf/{link['ifname']}/disable_ipv6").strip() == "1",
            "master": None,
        }
    assert rtnl.index("d0") == links["d0"]["index"]
    run("ip", "netns", "exec", netns, "sysctl", "-qw", "net.ipv6.conf.d1.disable_ipv6=1")
    assert rtnl.links()["d1"]["ipv6_disabled"] is True and rtnl.links()["d0"]["ipv6_disabled"] is False

    rtnl.link_set("d0", up=False)
    (d0,) = ip_json(netns, "link", "show", "dev", "d0")
    assert "UP" not in d0["flags"] and d0["address"] == "02:00:00:aa:bb:0c"
    assert rtnl.links()["d0"]["up"] is False
    rtnl.link_set("d0")  # nothing asked: nothing sent


def test_bridge_port_in_one_request_agrees_with_ip(make_netns, netns, rtnl):
    """bridge_add, veth_add with master and up (a LAN member's port, module_utils/lan_bridge.py), link_set
    master, and link_del taking the other end with it, as iproute2 sees them."""
    member = make_netns()
    rtnl.bridge_add("lan")
    bridge = rtnl.links()["lan"]
    rtnl.veth_add("p1", "eth0", f"/run/netns/{member}", master=bridge["index"], up=True)
    (port,) = ip_json(netns, "link", "show", "dev", "p1")
    assert port["master"] == "lan" and "UP" in port["flags"] and rtnl.links()["p1"]["master"] == bridge["index"]
    (bridge_shown,) = ip_json(netns, "-d", "link", "show", "dev", "lan")
    assert bridge_shown["linkinfo"]["info_kind"] == "bridge" and "UP" in bridge_shown["flags"]
    assert [link["ifname"] for link in ip_json(member, "link", "show", "dev", "eth0")] == ["eth0"]
    run("ip", "-n", netns, "link", "set", "p1", "nomaster")
    assert rtnl.links()["p1"]["master"] is None
    rtnl.link_set("p1", master=bridge["index"])
    assert ip_json(netns, "link", "show", "dev", "p1")[0]["master"] == "lan"
    rtnl.link_del("p1")
    assert "p1" not in rtnl.links()
    assert subprocess.run(["ip", "-n", member, "link", "show", "dev", "eth0"], capture_output=True).returncode != 0
    with pytest.raises(OSError) as err:
        rtnl.link_del("p1")
    assert err.value.errno == errno.ENODEV


# --- addresses -------------------------------------------------------------------------------------------

CIDRS = ["10.0.0.1/24", "10.0.0.9/24", "192.168.7.3/30", "172.16.0.1/31", "172.16.5.5/32", "127.0.0.2/8"]


def test_addr_add_del_as_ip_does(make_netns):
    ours, theirs = make_netns(), make_netns()
    with nl.in_netns(f"/run/netns/{ours}"), nl.Rtnl() as rtnl:
        for cidr in CIDRS:
            rtnl.addr_add("d0", cidr)
            run("ip", "-n", theirs, "addr", "add", cidr, "broadcast", "+", "dev", "d0")
        assert ip_addresses_raw(ours) == ip_addresses_raw(theirs)
        assert ("10.0.0.1", 24, "10.0.0.255") in ip_addresses(ours)["d0"]
        assert ("172.16.0.1", 31, None) in ip_addresses(ours)["d0"]

        expected = {name: sorted((f"{a}/{p}" for a, p, _ in addrs), key=ipaddress.IPv4Interface)
                    for name, addrs in ip_addresses(ours).items()}  # fmt: skip
        assert rtnl.addresses() == expected
        assert rtnl.addresses()["d0"] == sorted(CIDRS, key=ipaddress.IPv4Interface)

        with pytest.raises(OSError) as exc:
            rtnl.addr_add("d0", "10.0.0.1/24")
        assert exc.value.errno == errno.EEXIST
        assert "addr add 10.0.0.1/24 dev d0: File exists" in str(exc.value)

        for cidr in ("10.0.0.9/24", "172.16.5.5/32"):
            rtnl.addr_del("d0", cidr)
            run("ip", "-n", theirs, "addr", "del", cidr, "dev", "d0")
        assert ip_addresses_raw(ours) == ip_addresses_raw(theirs)
        assert "10.0.0.9/24" not in rtnl.addresses()["d0"]
        with pytest.raises(OSError) as exc:
            rtnl.addr_del("d0", "10.0.0.9/24")
        assert exc.value.errno == errno.EADDRNOTAVAIL and "addr del 10.0.0.9/24 dev d0" in str(exc.value)


# --- routes ----------------------------------------------------------------------------------------------

ROUTES = [
    ("default", "10.0.0.254", None),
    ("10.1.0.0/24", "10.0.0.253", None),
    ("10.1.0.0/24", "10.0.0.252", "d0"),  # replaced, not added
    ("10.2.0.0/16", None, "d0"),
    ("10.3.0.7/32", "10.0.0.253", "d0"),
]


def _route_argv(dest, gateway, dev):
    return [dest] + (["via", gateway] if gateway else []) + (["dev", dev] if dev else [])


def _norm(dest):
    return "default" if dest == "default" else str(ipaddress.IPv4Network(dest))


def test_routes_as_ip_does(make_netns):
    ours, theirs = make_netns(), make_netns()
    for ns in (ours, theirs):
        run("ip", "-n", ns, "link", "set", "d0", "up")
        run("ip", "-n", ns, "addr", "add", "10.0.0.1/24", "dev", "d0")
    with nl.in_netns(f"/run/netns/{ours}"), nl.Rtnl() as rtnl:
        for _ in range(2):  # replacing twice changes nothing
            for dest, gateway, dev in ROUTES:
                rtnl.route_replace(dest, gateway, dev)
                run("ip", "-n", theirs, "route", "replace", *_route_argv(dest, gateway, dev))
        assert ip_json(ours, "route", "show", "table", "main") == ip_json(theirs, "route", "show", "table", "main")
        shown = ip_routes(ours)
        assert len(shown) == 4 and all("protocol" not in r for r in shown)  # ip leaves out "boot", the default
        assert rtnl.routes() == [
            {"dest": _norm(r["dst"]), "gateway": r.get("gateway"), "dev": r.get("dev")} for r in shown
        ]
        assert {"dest": "10.1.0.0/24", "gateway": "10.0.0.252", "dev": "d0"} in rtnl.routes()

        rtnl.route_del("10.2.0.0/16", dev="d0")
        rtnl.route_del("default")
        run("ip", "-n", theirs, "route", "del", "10.2.0.0/16", "dev", "d0")
        run("ip", "-n", theirs, "route", "del", "default")
        assert ip_json(ours, "route", "show", "table", "main") == ip_json(theirs, "route", "show", "table", "main")
        assert [r["dest"] for r in rtnl.routes()] == ["10.1.0.0/24", "10.3.0.7/32"]

        with pytest.raises(OSError) as exc:
            rtnl.route_del("default")
        assert exc.value.errno == errno.ESRCH and "route del default" in str(exc.value)
        with pytest.raises(OSError) as exc:
            rtnl.route_replace("10.9.0.0/24", "192.0.2.1")
        assert exc.value.errno == errno.ENETUNREACH
        assert str(exc.value).startswith("[Errno 101] route replace 10.9.0.0/24 via 192.0.2.1: Network is unreachable")


def test_dumps_spanning_many_datagrams_are_complete(netns, rtnl):
    lines = ["link set d0 up", "addr add 10.0.0.1/16 dev d0"]
    lines += [f"addr add 10.0.{i // 250 + 1}.{i % 250 + 1}/16 dev d0" for i in range(300)]
    lines += [f"route add 10.{100 + i // 250}.{i % 250}.0/24 via 10.0.0.254" for i in range(1200)]
    run("ip", "-n", netns, "-batch", "-", stdin="\n".join(lines) + "\n")
    assert len(rtnl.routes()) == 1200 == len(ip_routes(netns))
    assert len(rtnl.addresses()["d0"]) == 301 == len(ip_addresses(netns)["d0"])


# --- qdiscs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [10**6, 10**7, 10**8, 10**9, 10 * 10**9, 40 * 10**9])
def test_tbf_as_tc_does(make_netns, rate):
    ours, theirs = make_netns(), make_netns()
    burst = max(1600, rate // 8 // 100)
    default = tc_qdiscs(ours)
    with nl.in_netns(f"/run/netns/{ours}"), nl.Rtnl() as rtnl:
        rtnl.qdisc_replace_tbf("d0", rate, burst, LATENCY_US)
        rtnl.qdisc_replace_tbf("d0", rate, burst, LATENCY_US)  # a replace of the same is fine
        run("tc", "-n", theirs, "qdisc", "replace", "dev", "d0", "root", "tbf",
            "rate", f"{rate}bit", "burst", str(burst), "latency", f"{LATENCY_US // 1000}ms")  # fmt: skip
        shown = tc_qdiscs(ours)
        assert shown == tc_qdiscs(theirs)
        assert shown[0]["kind"] == "tbf" and shown[0]["options"]["rate"] == rate // 8
        assert rtnl.links()["d0"]["qdisc"] == "tbf"

        rtnl.qdisc_del_root("d0")
        run("tc", "-n", theirs, "qdisc", "del", "dev", "d0", "root")
        assert tc_qdiscs(ours) == default == tc_qdiscs(theirs)


def test_qdisc_del_root_on_an_up_link_brings_back_its_default(netns, rtnl):
    run("ip", "-n", netns, "link", "set", "d0", "up")
    default = tc_qdiscs(netns)
    rtnl.qdisc_replace_tbf("d0", 10**8, 125000, LATENCY_US)
    assert tc_qdiscs(netns)[0]["kind"] == "tbf"
    rtnl.qdisc_del_root("d0")
    assert tc_qdiscs(netns) == default
    with pytest.raises(OSError) as exc:
        rtnl.qdisc_del_root("d0")
    assert "qdisc del dev d0 root" in str(exc.value)


# --- namespaces ------------------------------------------------------------------------------------------


def test_in_netns_moves_this_thread_only(netns):
    path = f"/run/netns/{netns}"
    home, target = ns_inode("/proc/thread-self/ns/net"), ns_inode(path)
    assert home != target
    seen = {}

    entered, looked = threading.Event(), threading.Event()

    def other_thread():
        entered.wait(10)
        seen["other"] = ns_inode("/proc/thread-self/ns/net")
        looked.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with nl.in_netns(path):
        seen["inside"] = ns_inode("/proc/thread-self/ns/net")
        entered.set()
        looked.wait(10)
        # a thread started in the block starts in the namespace, as a child process does (clone copies it)
        started_inside = threading.Thread(
            target=lambda: seen.setdefault("started inside", ns_inode("/proc/thread-self/ns/net"))
        )
        started_inside.start()
        started_inside.join()
        child = run("readlink", "/proc/self/ns/net").strip()
        child_links = json.loads(run("ip", "-json", "link", "show"))
        rtnl = nl.Rtnl()
    thread.join()
    assert seen == {"inside": target, "other": home, "started inside": target}
    assert ns_inode("/proc/thread-self/ns/net") == home
    assert child == f"net:[{target}]"
    assert sorted(link["ifname"] for link in child_links) == ["d0", "d1", "lo"]

    with rtnl:  # made inside, it keeps acting there
        assert sorted(rtnl.links()) == ["d0", "d1", "lo"]
        rtnl.link_set("d1", up=True)
    assert "UP" in ip_json(netns, "link", "show", "dev", "d1")[0]["flags"]


def test_in_netns_refuses_what_is_not_a_namespace(tmp_path):
    home = ns_inode("/proc/thread-self/ns/net")
    with pytest.raises(OSError) as exc, nl.in_netns(f"/run/netns/cznl-missing-{secrets.token_hex(4)}"):
        pass
    assert exc.value.errno == errno.ENOENT and "cznl-missing" in str(exc.value)
    (tmp_path / "plain").write_text("")
    with pytest.raises(OSError) as exc, nl.in_netns(str(tmp_path / "plain")):
        pass
    assert exc.value.errno == errno.EINVAL and "setns" in str(exc.value)
    assert ns_inode("/proc/thread-self/ns/net") == home


# --- errors ----------------------------------------------------------------------------------------------


def test_errors_name_what_failed(rtnl):
    for call, what in [
        (lambda: rtnl.index("nosuch0"), "index nosuch0"),
        (lambda: rtnl.index("x" * 20), "index"),
        (lambda: rtnl.link_set("nosuch0", up=True), "link set dev nosuch0 up"),
        (lambda: rtnl.addr_add("nosuch0", "10.0.0.1/24"), "index nosuch0"),
        (lambda: rtnl.qdisc_del_root("nosuch0"), "index nosuch0"),
    ]:
        with pytest.raises(OSError) as exc:
            call()
        assert exc.value.errno == errno.ENODEV, str(exc.value)
        assert what in str(exc.value) and "No such device" in str(exc.value)
    with pytest.raises(OSError) as exc:
        rtnl.addr_add("d0", "10.0.0.300/24")
    assert exc.value.errno == errno.EINVAL and "addr add 10.0.0.300/24 dev d0" in str(exc.value)
    with pytest.raises(OSError) as exc:
        rtnl.link_set("d0", mac="01:00:5e:00:00:01")  # multicast: the kernel refuses it
    assert exc.value.errno == errno.EADDRNOTAVAIL and "link set dev d0 address 01:00:5e:00:00:01" in str(exc.value)
