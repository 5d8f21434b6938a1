"""The uplinks of one pnode (module vde_uplinks): a tap plugged into each crossing substrate's switch,
bridged with a VXLAN device that floods to the peer pnodes, and, on the local target, the pnode's
namespace and its veth wire into the namespace standing for the experiment LAN.

Uplinks observes and repairs step by step; every change is noted (the module's `changes`) and, in
check mode, only noted. Standard library only (see daemons.py).
"""

from __future__ import annotations

import os
import re

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    kill_many,
    netns_inode,
    netns_path,
    proc_alive,
    proc_netns_inode,
    read_json,
    read_pid,
    remove_path,
    run,
    spawn_daemon,
    wait_for,
    write_json,
)
from ansible_collections.containerize.deploy.plugins.module_utils.names import IFNAME_RE, NS_RE, planned_names
from ansible_collections.containerize.deploy.plugins.module_utils.netns import delete_netns
from ansible_collections.containerize.deploy.plugins.module_utils.vxlan import (
    ZERO_MAC,
    Side,
    WireLock,
    experiment_device,
    link_fix,
)

TAG_RE = re.compile(r"^[0-9a-f]{8}$")
RECORD = "uplinks.json"


# The options of an uplink plan (doc fragment containerize.deploy.experiment.uplinks), for vde_uplinks and vde_network.
UPLINK_OPTIONS = {
    "pnet": {"type": "dict", "default": None},
    "uplinks": {"type": "list", "elements": "dict", "default": []},
    "device": {"type": "str", "default": None},
    "mtu": {"type": "int", "default": 1500},
    "port": {"type": "int", "default": 4789},
}


class Uplinks:
    def __init__(self, module):
        p = module.params
        self.module = module
        self.check = module.check_mode
        self.run_dir = os.path.abspath(p["run_dir"])
        self.tag = p["tag"]
        self.timeout = p["timeout"]
        self.mtu = p["mtu"]
        self.port = p["port"]
        self.pnet = p["pnet"] or None
        self.uplinks = list(p["uplinks"] or [])
        record = read_json(self.rpath(RECORD)) or {}
        self.record = record
        pnet = self.pnet or {}
        self.namespace = pnet.get("namespace") or record.get("namespace")
        self.wire_ns = pnet.get("wire_namespace") or record.get("wire_namespace")
        self.wire_bridge = pnet.get("wire_bridge") or record.get("wire_bridge")
        self.wire_port = pnet.get("wire_port") or record.get("wire_port")
        self.device = p["device"] or pnet.get("device") or record.get("device")
        self.side = Side(self.namespace)
        self.own_link = re.compile(rf"^[tbx]{re.escape(self.tag)}[0-9a-f]+$")
        self.changes = []
        self.result = {"changed": False, "changes": self.changes, "started": [], "restarted": [], "stopped": []}
        self.before, self.after = {}, {}

    def rpath(self, name):
        return os.path.join(self.run_dir, name)

    def note(self, text):
        self.changes.append(text)

    def plan_bridge(self, name, have, cmds_del, cmds_add, note):
        """Queue the `ip` commands that make NAME a bridge: HAVE (the link there, or None) goes to CMDS_DEL
        when it is something else, a new bridge to CMDS_ADD (with NOTE). The bridge kept, or None."""
        if have and have["kind"] != "bridge":
            cmds_del.append(f"link del dev {name}")
            have = None
        if not have:
            self.note(note)
            cmds_add.append(f"link add {name} type bridge")
        return have

    # -- validation
    def validate(self):
        errors = []
        if not TAG_RE.match(self.tag):
            errors.append(f"tag {self.tag!r} is not eight hex digits")
        for key, value in (("namespace", self.namespace), ("wire_namespace", self.wire_ns)):
            if value and not NS_RE.match(value):
                errors.append(f"pnet {key} {value!r} is not a valid namespace name")
        for key, value in (("device", self.device), ("wire_bridge", self.wire_bridge), ("wire_port", self.wire_port)):
            if value and not IFNAME_RE.match(value):
                errors.append(f"{key} {value!r} is not a valid interface name")
        if self.namespace and not (self.wire_ns and self.wire_bridge and self.wire_port and self.device):
            errors.append("pnet with a namespace needs device, wire_namespace, wire_bridge and wire_port")
        if self.uplinks and not self.pnet:
            errors.append("uplinks need pnet (this pnode's place on the experiment network)")
        for sid, up in planned_names(self.uplinks, errors, "switch", "uplink switch {!r} is not a valid switch id",
                                     "uplink of switch {} planned twice"):
            for key in ("tap", "bridge", "vxlan"):
                if not IFNAME_RE.match(str(up.get(key, ""))):
                    errors.append(f"uplink {sid}: {key} name {up.get(key)!r} is not a valid interface name")
            try:
                if not 1 <= int(up.get("vni")) < (1 << 24):
                    raise ValueError
            except (TypeError, ValueError):
                errors.append(f"uplink {sid}: vni {up.get('vni')!r} must be 1 to 16777215")
            if not up.get("peers"):
                errors.append(f"uplink {sid}: no peers")
        if errors:
            self.module.fail_json(msg="invalid uplink plan: " + "; ".join(errors), errors=errors)

    # -- plugs
    def plug_pidfile(self, sid):
        return self.rpath(f"{sid}.uplink.pid")

    def plug_argv(self, up):
        argv = [*self.side.exec_prefix(), "vde_plug2tap", "-d", "-P", self.plug_pidfile(up["switch"]),
                "-s", self.rpath(f"{up['switch']}.ctl")]
        if up.get("port"):
            argv += ["-p", str(int(up["port"]))]
        return [*argv, up["tap"]]

    def switch_pid(self, sid):
        pidfile = self.rpath(f"{sid}.pid")
        pid = read_pid(pidfile)
        return pid if pid and proc_alive(pid, pidfile) else None

    def recorded_plugs(self):
        try:
            entries = os.listdir(self.run_dir)
        except OSError:
            return []
        return sorted(e[: -len(".uplink.pid")] for e in entries if e.endswith(".uplink.pid"))

    def stop_plugs(self, sids):
        targets = []
        for sid in sids:
            pidfile = self.plug_pidfile(sid)
            pid = read_pid(pidfile)
            if pid and proc_alive(pid, pidfile):
                self.result["stopped"].append(sid)
                self.note(f"stop the uplink plug of {sid}")
            targets.append((pid, pidfile))
        if not self.check:
            kill_many(targets, self.timeout)
            for sid in sids:
                remove_path(self.plug_pidfile(sid))
                remove_path(self.rpath(f"{sid}.uplink.json"))

    def orphan_plugs(self):
        """Live uplink plugs of RUN_DIR whose pid file is gone (the run directory was removed by hand)."""
        head, found = (self.run_dir.rstrip("/") + "/").encode(), []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    args = handle.read().split(b"\0")
            except OSError:
                continue
            if any(a.startswith(head) and a.endswith(b".uplink.pid") for a in args) and proc_alive(int(entry)):
                found.append(int(entry))
        return found

    def ensure_plugs(self, links):
        """Start or restart the plugs that are not healthy; returns the switch ids (re)started."""
        inode = self.side.inode()
        start = {}
        for up in self.uplinks:
            sid = up["switch"]
            pidfile = self.plug_pidfile(sid)
            pid = read_pid(pidfile)
            alive = bool(pid and proc_alive(pid, pidfile))
            record = read_json(self.rpath(f"{sid}.uplink.json")) or {}
            argv = self.plug_argv(up)
            switch_pid = self.switch_pid(sid)
            if switch_pid is None and not self.check:
                raise RuntimeError(f"switch {sid} is not running (run vde_network first)")
            healthy = (alive and inode is not None and proc_netns_inode(pid) == inode and record.get("argv") == argv
                       and record.get("switch_pid") == switch_pid and up["tap"] in links)
            self.before.setdefault(sid, {})["plug"] = "running" if alive else "stopped"
            self.after.setdefault(sid, {})["plug"] = "running"
            if healthy:
                continue
            self.result["restarted" if alive else "started"].append(sid)
            self.note(f"{'replug' if alive else 'plug'} {up['tap']} into {sid}")
            start[sid] = (argv, switch_pid)
        if self.check or not start:
            return set(start)
        kill_many([(read_pid(self.plug_pidfile(sid)), self.plug_pidfile(sid)) for sid in start], self.timeout)
        failures = []
        for sid, (argv, _switch_pid) in start.items():
            remove_path(self.plug_pidfile(sid))
            rc, out = spawn_daemon(argv, self.timeout)
            if rc != 0:
                failures.append(f"{sid} (rc={rc}): {out}")
        # vde_plug2tap writes its pid file before it makes the tap: ready is alive and its tap there
        pending = set(start)
        taps = {u["switch"]: u["tap"] for u in self.uplinks}

        def all_up():
            alive = {s for s in pending if proc_alive(read_pid(self.plug_pidfile(s)), self.plug_pidfile(s))}
            if alive:
                present = self.side.links()
                pending.difference_update({s for s in alive if taps[s] in present})
            return not pending

        if not failures and not wait_for(all_up, self.timeout):
            failures += [f"{sid}: vde_plug2tap did not come up (or made no tap {taps[sid]})" for sid in sorted(pending)]
        if failures:
            raise RuntimeError("uplink plugs did not start: " + "; ".join(failures))
        for sid, (argv, switch_pid) in start.items():
            write_json(self.rpath(f"{sid}.uplink.json"),
                       {"argv": argv, "switch_pid": switch_pid, "pid": read_pid(self.plug_pidfile(sid))})
        return set(start)

    # -- the local target's simulated physical network
    def ensure_wire(self):
        """The namespace standing for the experiment LAN and its bridge; returns the wire's links."""
        wire = Side(self.wire_ns)
        if not netns_inode(self.wire_ns):
            self.note(f"create the experiment LAN namespace {self.wire_ns}")
            if not self.check:
                if os.path.lexists(netns_path(self.wire_ns)):
                    delete_netns(self.wire_ns, self.timeout)
                rc, _out, err = run(["ip", "netns", "add", self.wire_ns])
                if rc != 0:
                    raise RuntimeError(f"ip netns add {self.wire_ns}: {err.strip()}")
        links = wire.links() if netns_inode(self.wire_ns) else {}
        cmds = []
        bridge = self.plan_bridge(self.wire_bridge, links.get(self.wire_bridge), cmds, cmds,
                                  f"create the experiment LAN bridge {self.wire_bridge} in {self.wire_ns}")
        fix, what = link_fix(self.wire_bridge, bridge)
        if bridge and fix:
            self.note(f"set {self.wire_bridge} in {self.wire_ns}: {', '.join(what)}")
        cmds += fix
        if cmds and not self.check:
            wire.batch("ip", cmds)
        return links

    def ensure_pnode_side(self, wire_links):
        """This pnode's namespace and its veth wire into the experiment LAN; returns the namespace's links."""
        side, ns, wire = self.side, self.namespace, Side(self.wire_ns)
        mtu = (self.pnet or {}).get("mtu")
        mtu_args = ["mtu", str(int(mtu))] if mtu else []
        if not netns_inode(ns):
            self.note(f"create the pnode namespace {ns}")
            if not self.check:
                if os.path.lexists(netns_path(ns)):
                    delete_netns(ns, self.timeout)
                rc, _out, err = run(["ip", "netns", "add", ns])
                if rc != 0:
                    raise RuntimeError(f"ip netns add {ns}: {err.strip()}")
        links = side.links() if netns_inode(ns) else {}
        dev = links.get(self.device)
        port = wire_links.get(self.wire_port)
        if not (dev and dev["kind"] == "veth" and port and port["kind"] == "veth"):
            self.note(f"wire {ns} {self.device} to {self.wire_ns} {self.wire_port}")
            if not self.check:
                if dev:
                    side.batch("ip", [f"link del dev {self.device}"])
                if port:
                    wire.batch("ip", [f"link del dev {self.wire_port}"])
                rc, _out, err = run(["ip", "link", "add", self.device, "netns", ns, *mtu_args, "type", "veth",
                                     "peer", "name", self.wire_port, "netns", self.wire_ns, *mtu_args])
                if rc != 0:
                    raise RuntimeError(f"cannot make the veth wire of {ns}: {err.strip()}")
            links[self.device] = {"kind": "veth", "master": None, "mtu": mtu, "up": False, "addrgenmode": None,
                                  "inet": [], "inet6": []}
            port = None
        fix, what = link_fix(self.wire_port, port, master=self.wire_bridge, mtu=mtu)
        if port and fix:
            self.note(f"set {self.wire_port} in {self.wire_ns}: {', '.join(what)}")
        if fix and not self.check:
            wire.batch("ip", fix)
        return links

    # -- the experiment interface, both targets
    def ensure_device(self, links):
        device, added, held = experiment_device(self.side, self.pnet, self.device, links, self.note, self.check)
        if not held:
            self.device = device
        if added and not self.namespace:
            self.record["added_address"] = added
        return device

    # -- bridges, VXLAN devices, forwarding entries
    def ensure_links(self, links, local_address):
        cmds_del, cmds_add, cmds_set = [], [], []
        planned = set()
        for up in self.uplinks:
            planned |= {up["tap"], up["bridge"], up["vxlan"]}
        keep = {"lo", self.device} if self.namespace else set()
        for name in sorted(links):
            stray = name not in planned and (name not in keep if self.namespace else bool(self.own_link.match(name)))
            if stray:
                self.note(f"remove stray link {name}")
                cmds_del.append(f"link del dev {name}")
        for up in self.uplinks:
            sid, tap, br, vx = up["switch"], up["tap"], up["bridge"], up["vxlan"]
            want_vx = {"id": int(up["vni"]), "local": local_address, "port": self.port}
            have_br, have_vx, have_tap = links.get(br), links.get(vx), links.get(tap)
            self.before[sid].update({"bridge": bool(have_br), "vxlan": have_vx and have_vx["vxlan"],
                                     "tap": bool(have_tap) and have_tap.get("master")})
            self.after[sid].update({"bridge": True, "vxlan": want_vx, "tap": br})
            have_br = self.plan_bridge(br, have_br, cmds_del, cmds_add, f"create bridge {br}")
            if have_vx and (have_vx["kind"] != "vxlan" or have_vx["vxlan"] != want_vx):
                self.note(f"replace vxlan {vx} (planned {want_vx})")
                cmds_del.append(f"link del dev {vx}")
                have_vx = None
            if not have_vx:
                self.note(f"create vxlan {vx} (VNI {want_vx['id']})")
                cmds_add.append(f"link add {vx} type vxlan id {want_vx['id']} local {local_address} "
                                f"dstport {self.port}")
            for name, have, master, mtu in ((br, have_br, None, None), (vx, have_vx, br, self.mtu),
                                            (tap, have_tap, br, self.mtu)):
                fix, what = link_fix(name, have, master=master, mtu=mtu)
                if fix and have:
                    self.note(f"set {name}: {', '.join(what)}")
                cmds_set += fix
        if not self.check:
            self.side.batch("ip", cmds_del + cmds_add + cmds_set)

    def ensure_fdb(self):
        have = self.side.fdb_zero() if not self.check or self.side.exists() else {}
        cmds = []
        for up in self.uplinks:
            vx = up["vxlan"]
            want = {str(p) for p in up["peers"]}
            got = have.get(vx, set())
            self.before[up["switch"]]["peers"] = sorted(got)
            self.after[up["switch"]]["peers"] = sorted(want)
            for peer in sorted(want - got):
                cmds.append(f"fdb append {ZERO_MAC} dev {vx} dst {peer}")
            for peer in sorted(got - want):
                cmds.append(f"fdb del {ZERO_MAC} dev {vx} dst {peer}")
            if want != got:
                self.note(f"flood {vx} to {', '.join(sorted(want))}")
        if cmds and not self.check:
            self.side.batch("bridge", cmds)

    def write_record(self):
        record = {"namespace": self.namespace, "wire_namespace": self.wire_ns, "wire_bridge": self.wire_bridge,
                  "wire_port": self.wire_port, "device": self.device,
                  "added_address": self.record.get("added_address")}
        if not self.check and read_json(self.rpath(RECORD)) != record:
            os.makedirs(self.run_dir, mode=0o755, exist_ok=True)
            write_json(self.rpath(RECORD), record)

    # -- entry points
    def present(self):
        if not self.uplinks:
            self.absent()
            return
        stale = [sid for sid in self.recorded_plugs() if sid not in {u["switch"] for u in self.uplinks}]
        self.stop_plugs(stale)
        if not self.check:
            os.makedirs(self.run_dir, mode=0o755, exist_ok=True)
        # written first, so a swap-out after a failure below still finds every name
        self.write_record()
        if self.namespace:
            with WireLock(self.wire_ns, not self.check):  # a pnode swapping out must not remove the LAN meanwhile
                links = self.ensure_pnode_side(self.ensure_wire())
        else:
            links = self.side.links()
        self.result["device"] = self.ensure_device(links)
        self.ensure_plugs(links)
        if not self.check:
            links = self.side.links()  # with the taps of the plugs just started
        self.ensure_links(links, self.pnet["address"])
        self.ensure_fdb()
        self.write_record()

    def absent(self):
        if not (self.pnet or self.record or self.recorded_plugs()):
            return  # this pnode never had uplinks (the experiment has a single pnode)
        self.stop_plugs(sorted(set(self.recorded_plugs()) | {u["switch"] for u in self.uplinks}))
        orphans = self.orphan_plugs()
        if orphans:
            self.note(f"stop uplink plugs without pid file: {', '.join(map(str, orphans))}")
            if not self.check:
                kill_many([(pid, None) for pid in orphans], self.timeout)
        if self.namespace:
            if os.path.lexists(netns_path(self.namespace)):
                self.note(f"remove the pnode namespace {self.namespace}")
                if not self.check:
                    # the wire first: deleting a veth end removes its peer at once, a namespace may linger
                    if netns_inode(self.namespace):
                        run(self.side.ip("link", "del", "dev", self.device))
                    delete_netns(self.namespace, self.timeout)
            if self.wire_ns:
                with WireLock(self.wire_ns, not self.check):
                    if os.path.lexists(netns_path(self.wire_ns)):
                        wire_links = Side(self.wire_ns).links() if netns_inode(self.wire_ns) else {}
                        ports = [n for n in wire_links if n not in ("lo", self.wire_bridge, self.wire_port)]
                        if not ports:
                            self.note(f"remove the experiment LAN namespace {self.wire_ns}")
                            if not self.check:
                                delete_netns(self.wire_ns, self.timeout)
                        elif self.wire_port in wire_links:
                            self.note(f"remove {self.wire_port} from {self.wire_ns}")
                            if not self.check:
                                Side(self.wire_ns).batch("ip", [f"link del dev {self.wire_port}"])
        else:
            links = self.side.links()
            own = sorted(n for n in links if self.own_link.match(n))
            cmds = [f"link del dev {n}" for n in own]
            added = self.record.get("added_address")
            if added and added.get("device") in links and added.get("address") in links[added["device"]]["inet"]:
                cmds.append(f"addr del {added['address']} dev {added['device']}")
            if cmds:
                removed = own + ([f"address {added['address']} of {added['device']}"] if len(cmds) > len(own) else [])
                self.note(f"remove {', '.join(removed)}")
                if not self.check:
                    self.side.batch("ip", cmds)
        if os.path.exists(self.rpath(RECORD)):
            self.note(f"remove {self.rpath(RECORD)}")
            if not self.check:
                remove_path(self.rpath(RECORD))


def carry_uplinks(module, present):
    """Realize (PRESENT) or remove this pnode's uplinks with MODULE's options; (result, before, after).

    Fails MODULE when a program is missing or a step fails. The modules vde_uplinks and vde_network
    (which does this in the same call as the switches, with O(tag)) share it.
    """
    work = Uplinks(module)
    work.validate()
    if present and work.uplinks:
        for prog in ("ip", "bridge", "vde_plug2tap"):
            if not module.get_bin_path(prog):
                module.fail_json(msg=f"{prog} not found (packages iproute2, vde2)")
    try:
        work.present() if present else work.absent()
    except RuntimeError as exc:
        work.result["changed"] = bool(work.changes)
        module.fail_json(msg=str(exc), **work.result)
    work.result["changed"] = bool(work.changes)
    return work.result, work.before, work.after
