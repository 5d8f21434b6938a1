"""One process node realized on its pnode: a network namespace with its /etc files, node directory, taps
plugged into VDE (plugs.py) or kernel links (kernel_links.py) set over netlink, end-node tbf, and its
start command (on its planned cpus) under the shared supervisor (roles/hv/files/start-command.sh); forwarding.

A Node observes the node, notes each thing that is not as planned (what its result and diff
report), and repairs it unless the module runs in check mode: every action goes through act(). Stdlib only.
"""

from __future__ import annotations

import os
import subprocess

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    kill_pid,
    netns_inode,
    netns_path,
    norm_dest,
    proc_alive,
    proc_netns_inode,
    read_json,
    read_pid,
    read_text,
    remove_path,
    short_hash,
    write_json,
)
from ansible_collections.containerize.deploy.plugins.module_utils.kernel_links import (
    ensure_bridge_port,
    ensure_veth,
    kernel_path,
    remove_link,
)
from ansible_collections.containerize.deploy.plugins.module_utils.netlink import Rtnl, in_netns
from ansible_collections.containerize.deploy.plugins.module_utils.netns import (
    add_namespace,
    etc_dir,
    sysctl_in_netns,
    sysctls_in_netns,
    write_etc_file,
    write_in_place,
)
from ansible_collections.containerize.deploy.plugins.module_utils.plugs import (
    observe_plug,
    plan_plug,
    plug_healthy,
    plug_pidfile,
    prioritize_plug,
    start_plug,
    stop_plug,
    unplugged,
)
from ansible_collections.containerize.deploy.plugins.module_utils.process_plan import taskset_prefix
from ansible_collections.containerize.deploy.plugins.module_utils.start_log import LOG_NAME, read_start_log
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter import TBF_LATENCY_MS, tbf_burst

FORWARDING = "/proc/sys/net/ipv4/ip_forward"
IPV6_CONF = "/proc/sys/net/ipv6/conf"  # NAME/disable_ipv6 for "default" and each interface
BLANK_LINK = {"mac": None, "up": False, "addresses": [], "qdisc": None, "ipv6_disabled": None}


def observe_ip(nl):
    """Links (by name) and non-kernel main-table IPv4 routes of the namespace of netlink socket NL.

    One link dump, whose names the address and route dumps use."""
    found = nl.links()
    names = {link["index"]: name for name, link in found.items()}
    addresses = nl.addresses(names)
    links = {
        name: {
            "mac": (link["mac"] or "").lower(),
            "up": link["up"],
            "qdisc": link["qdisc"],
            "addresses": addresses.get(name, []),
            "ipv6_disabled": link["ipv6_disabled"],
        }
        for name, link in found.items()
    }
    return {"links": links, "routes": nl.routes(names)}


def supervisor_alive(run_dir, exp_dir, node, pid):
    """PID is NODE's start command supervisor: its arguments name the node's log directory (or, started
    by an earlier version of process_nodes, its pid file), so a reused pid is never mistaken for it."""
    if not pid:
        return False
    return proc_alive(pid, os.path.join(exp_dir, node, "log")) or proc_alive(
        pid, os.path.join(run_dir, f"{node}.start.pid")
    )


def start_summary(st):
    if st["pid"]:
        return "running"
    if st["exit"] is not None:
        return f"exit {st['exit']}"
    return "killed" if st["started"] else "not started"


class ProcessNode:
    """Observation, decisions and actions for one process node (CTX: the module's Context)."""

    def __init__(self, ctx, spec, created=False):
        self.ctx = ctx
        self.created = created  # its namespace was just made by the batch of the module
        self.name = spec["name"]
        self.ns = spec["namespace"]
        self.ghost = bool(spec.get("ghost"))
        self.hostname = spec.get("hostname") or self.name
        self.startcmd = spec.get("startcmd") or ""
        # its start command runs on its planned CPUs, else on the nodes' (datapath_cpus.py)
        self.taskset = taskset_prefix(spec.get("cpus") or ctx.node_cpus)
        self.forwarding = bool(spec.get("forwarding"))
        self.interfaces = list(spec.get("interfaces") or [])
        self.plugs = {  # how each interface is plugged (a veth or a bridge port has no plug)
            i["ifname"]: plan_plug(ctx.run_dir, self.name, i, ctx.wires, ctx.element)
            for i in self.interfaces if not (i.get("veth") or i.get("bridge"))
        }
        self.routes = [
            {"dest": norm_dest(r.get("dest")), "gateway": r.get("gateway") or None, "dev": r.get("dev")}
            for r in spec.get("routes") or []
        ]
        self.nodedir = os.path.join(ctx.nodes_dir, self.name)
        self.log_dir = os.path.join(self.nodedir, "log")
        self.changes = []
        self.started = False
        self.restarted = []
        self.stopped = []
        self.before = {}
        self.after = {}
        self._nl = None
        self._forwarding = None
        self.unplugged = set()

    # -- netlink, inside the namespace
    def rtnl(self):
        """This node's netlink socket (made inside its namespace on first use: it stays bound there)."""
        if self._nl is None:
            try:
                with in_netns(netns_path(self.ns)):
                    self._nl = Rtnl()
                    # read while inside: /proc/sys/net is the reading thread's namespace (one setns less per node)
                    self._forwarding = read_text(FORWARDING)
            except OSError as exc:
                raise RuntimeError(f"cannot enter namespace {self.ns}: {exc}") from None
        return self._nl

    def close(self):
        if self._nl is not None:
            self._nl.close()
            self._nl = None

    def ipv6_paths(self):
        """{name: its disable_ipv6 sysctl} to keep as planned (ctx.ipv6): the namespace's default and each
        interface; none when IPv6 is left as the kernel makes it (ctx.ipv6 None)."""
        if self.ctx.ipv6 is None:
            return {}
        names = ["default", *(iface["ifname"] for iface in self.interfaces)]
        return {name: f"{IPV6_CONF}/{name}/disable_ipv6" for name in names}

    def ipv6_summary(self, values):
        """"on", "off" or "mixed" for VALUES ({name: disable_ipv6 text or None}); None when not managed."""
        seen = {(text or "").strip() for text in values.values()} - {""}
        if self.ctx.ipv6 is None or not seen:
            return None
        return "mixed" if len(seen) > 1 else ("off" if seen == {"1"} else "on")

    def has_link(self, ifname):
        try:
            self.rtnl().index(ifname)
        except OSError:
            return False
        return True

    def netlink(self, ops):
        """Send OPS, (method, args...) of Rtnl, in order; a refusal names the node and the request."""
        nl = self.rtnl()
        for method, *args in ops:
            try:
                getattr(nl, method)(*args)
            except OSError as exc:
                raise RuntimeError(f"{self.name} ({self.ns}): {exc}") from None

    # -- the start command
    def start_pidfile(self):
        return self.ctx.rpath(f"{self.name}.start.pid")

    def start_argv(self):
        """The shared supervisor in the node's namespace and a UTS namespace of its own (the command: one argument)."""
        return [
            *self.taskset, "ip", "netns", "exec", self.ns, "unshare", "--uts", "--", "sh", self.ctx.start_script,
            self.log_dir, self.startcmd, self.hostname, self.nodedir,
        ]  # fmt: skip

    def wants_start(self):
        return bool(self.startcmd.strip()) and not self.ghost and self.ctx.start_commands

    # -- observation
    def observe(self):
        ctx = self.ctx
        etc = etc_dir(self.ns)
        o = {
            "registered": ctx.records.namespace(self.name),
            "ns_inode": netns_inode(self.ns),
            "hosts": read_text(os.path.join(etc, "hosts")),
            "hostname": read_text(os.path.join(etc, "hostname")),
            "pid": read_text(os.path.join(self.nodedir, "pid")),
            "eid": read_text(os.path.join(self.nodedir, "eid")),
            "logdir": os.path.isdir(self.log_dir),
            "forwarding": None,
            "ipv6": {},
            "tc": ctx.records.tc(self.name),
        }
        if self.created:  # just made: nothing but a down lo, no need to ask (one request less per node)
            o["ip"] = {"links": {"lo": dict(BLANK_LINK)}, "routes": []}
        else:
            o["ip"] = observe_ip(self.rtnl()) if o["ns_inode"] else None
        if o["ns_inode"] and not self.created:  # a new one inherits it: set (and compared) once, in ensure
            value = (self._forwarding or "").strip() or None  # read when its socket was made
            if value is None:
                value = sysctl_in_netns(self.ns, "net.ipv4.ip_forward")
            o["forwarding"] = value == "1" if value is not None else None
            links = (o["ip"] or {}).get("links", {})
            o["ipv6"] = {  # of the planned interfaces (the namespace's default is set where interfaces are made)
                iface["ifname"]: None if (links.get(iface["ifname"]) or {}).get("ipv6_disabled") is None
                else ("1" if links[iface["ifname"]]["ipv6_disabled"] else "0")
                for iface in self.interfaces
            }
        o["plugs"] = {ifname: observe_plug(plan, o["ns_inode"], ctx.datapath) for ifname, plan in self.plugs.items()}
        pid = read_pid(self.start_pidfile())
        alive = supervisor_alive(ctx.run_dir, ctx.nodes_dir, self.name, pid)
        record = read_json(ctx.rpath(f"{self.name}.start.json")) or {}
        started, exit_code, _since = read_start_log(self.log_dir)
        o["start"] = {
            "pid": pid if alive else None,
            "old_pid": record.get("pid"),
            "in_ns": alive and bool(o["ns_inode"]) and proc_netns_inode(pid) == o["ns_inode"],
            "argv": record.get("argv"),
            "exit": exit_code,
            "started": started,
        }
        return o

    def summary(self, o):
        """Before-state summary for diff mode."""
        ip = o["ip"] or {"links": {}, "routes": []}
        s = {
            "namespace": self.ns if o["ns_inode"] else None,
            "hosts": short_hash(o["hosts"]),
            "forwarding": o["forwarding"],
            "interfaces": {},
            "routes": sorted(f"{r['dest']} via {r['gateway']}" for r in ip["routes"]),
            "start": start_summary(o["start"]),
        }
        if self.ctx.ipv6 is not None:
            s["ipv6"] = self.ipv6_summary(o["ipv6"])
        for iface in self.interfaces:
            link = ip["links"].get(iface["ifname"])
            plug = o["plugs"].get(iface["ifname"])
            s["interfaces"][iface["ifname"]] = {
                "plug": ("running" if plug["pid"] else "stopped") if plug else kernel_path(iface, link),
                "mac": link["mac"] if link else None,
                "addresses": link["addresses"] if link else [],
                "up": link["up"] if link else False,
            }
        return s

    def planned_summary(self, o):
        st = o["start"]
        if not self.wants_start():
            start = "none"
        else:
            start = f"exit {st['exit']}" if (st["exit"] is not None and not self._start_needed(o)) else "running"
        planned = {
            "namespace": self.ns,
            "hosts": short_hash(self.ctx.hosts),
            "forwarding": self.forwarding,
            "interfaces": {
                i["ifname"]: {
                    "plug": "bridge" if i.get("bridge") else "veth" if i.get("veth") else "running",
                    "mac": str(i.get("mac") or "").lower() or None,
                    "addresses": [f"{i['address']}/{i['prefix']}"] if i.get("address") else [],
                    "up": True,
                }
                for i in self.interfaces
            },
            "routes": sorted(f"{r['dest']} via {r['gateway']}" for r in self.routes),
            "start": start,
        }
        if self.ctx.ipv6 is not None:
            planned["ipv6"] = "on" if self.ctx.ipv6 else "off"
        return planned

    # -- decisions and actions
    def note(self, what):
        self.changes.append(what)

    def act(self, what, action, *args):
        """Note WHAT, and do ACTION(*ARGS) unless in check mode."""
        self.changes.append(what)
        if not self.ctx.check:
            action(*args)

    def ensure(self):
        """Observe, then (unless check mode) repair. Returns self."""
        try:
            return self._ensure()
        finally:
            self.close()

    def _ensure(self):
        ctx = self.ctx
        o = self.observe()
        self.before = self.summary(o)
        self.after = self.planned_summary(o)

        # the node's record (saved with the others once the nodes are done; a namespace about to be made
        # is recorded before it is, so a failure still leaves a trace for swap-out)
        if o["registered"] != self.ns:
            self.act("record", ctx.records.set, self.name, self.ns)
        if o["hosts"] != ctx.hosts:  # the /etc/netns/NS files
            self.act("hosts", self.write_hosts)
        if ctx.write_hostname and o["hostname"] != self.hostname + "\n":
            self.act("hostname", write_etc_file, self.ns, "hostname", self.hostname + "\n")

        fresh_ns = self.created or not o["ns_inode"]
        if self.created:
            self.note("namespace")
        elif fresh_ns:
            self.act("namespace", self.remake_namespace, o)

        if o["pid"] != ctx.project + "\n" or o["eid"] != ctx.experiment + "\n" or not o["logdir"]:
            self.act("node directory", self.write_node_dir)

        unplugged_ifs = self.unplug()
        replugged = self.plug(o, {} if fresh_ns else (o["ip"] or {}).get("links", {}))
        ip = self.ip_after_plugs(o, fresh_ns, set(replugged) | set(unplugged_ifs), replugged)
        tc_ops, tc_record = self.plan_tc(ip, o["tc"])
        self.ensure_sysctls(o, fresh_ns, replugged)  # before the links go up
        self.apply_ip(ip, tc_ops)
        self.record_tc(tc_record, o["tc"])
        self.apply_start(o)
        return self

    def remake_namespace(self, o):
        self.close()  # a socket of the namespace that was there
        add_namespace(self.ns)
        o["ns_inode"] = netns_inode(self.ns)

    def write_hosts(self):
        os.makedirs(etc_dir(self.ns), mode=0o755, exist_ok=True)
        self.ctx.shared.place(os.path.join(etc_dir(self.ns), "hosts"), "hosts", self.ctx.hosts)

    def write_node_dir(self):
        os.makedirs(self.log_dir, mode=0o755, exist_ok=True)
        self.ctx.shared.place(os.path.join(self.nodedir, "pid"), "pid", self.ctx.project + "\n")
        self.ctx.shared.place(os.path.join(self.nodedir, "eid"), "eid", self.ctx.experiment + "\n")

    def unplug(self):
        """Stop the plugs of interfaces no longer planned; their names."""
        ctx = self.ctx
        # a vde_plug2tap where its element is the plug now goes too
        plugged = [ifname for ifname, plan in self.plugs.items() if not plan.record]
        gone = unplugged(ctx.plugged, self.name, plugged)
        for ifname in gone:
            pidfile = plug_pidfile(ctx.run_dir, self.name, ifname)
            if proc_alive(read_pid(pidfile), pidfile):
                self.stopped.append(f"{self.name}.{ifname}")
            self.act(f"unplug {ifname}", stop_plug, pidfile, ctx.timeout)
        self.unplugged = set(gone)
        return gone

    def plug(self, o, links):
        """(Re)start every plug that is not healthy (plugs.py); the interfaces (re)plugged."""
        ctx = self.ctx
        replugged = []
        for iface in self.interfaces:
            ifname = iface["ifname"]
            if iface.get("veth"):
                # an interface that had a plug before has just lost its tap (unplug): a veth takes its place
                if (ifname not in links or ifname in self.unplugged) and ensure_veth(self, iface):
                    replugged.append(ifname)  # new, or made by its peer since observed: blank
                continue
            if iface.get("bridge"):
                # the same: a bridge port in place of the tap of an earlier plan
                if ensure_bridge_port(self, iface, ifname in links and ifname not in self.unplugged):
                    replugged.append(ifname)
                continue
            plug, plan = o["plugs"][ifname], self.plugs[ifname]
            switch_pid, switch_started = ctx.switch(plan.switch)
            if switch_pid is None and not ctx.check:
                raise RuntimeError(
                    f"switch {plan.switch} of {self.name} {ifname} is not running (run vde_network first)"
                )
            if plug_healthy(plug, plan.argv, switch_started, ifname in links):
                if prioritize_plug(plug, ctx.check, ctx.datapath):
                    self.note(f"priority {ifname}")
                continue
            replugged.append(ifname)
            if plug["pid"]:
                self.restarted.append(f"{self.name}.{ifname}")
            elif ifname in links or (not ctx.check and self.has_link(ifname)):
                # no plug holds the name: a veth or bridge port of an earlier plan (one whose LAN namespace was
                # just deleted goes with it, but the kernel frees a namespace's devices later)
                self.act(f"unlink {ifname}", remove_link, self, ifname)
            self.act(
                f"{'replug' if plug['pid'] else 'plug'} {ifname}", start_plug, self.ns, plan,
                lambda name=ifname: self.has_link(name), ctx.timeout, f"{self.name} {ifname}", ctx.datapath,
            )  # fmt: skip
        return replugged

    def ip_after_plugs(self, o, fresh_ns, gone, replugged):
        """The namespace's links and routes once the plugs are as planned (taps of new plugs are blank)."""
        if self.ctx.check:
            ip = o["ip"] or {"links": {}, "routes": []}
            if not (fresh_ns or gone):
                return ip
            # taps of restarted plugs come back empty, those of stopped plugs go away
            return {
                "links": {k: v for k, v in ip["links"].items() if k not in gone and not fresh_ns},
                "routes": [r for r in ip["routes"] if r["dev"] not in gone and not fresh_ns],
            }
        if fresh_ns and not gone - set(replugged):
            # a new namespace holds only its down lo and the fresh taps: no need to ask
            return {"links": {name: dict(BLANK_LINK) for name in ["lo", *replugged]}, "routes": []}
        if fresh_ns or gone:
            return observe_ip(self.rtnl())
        return o["ip"] or {"links": {}, "routes": []}

    def ensure_sysctls(self, o, fresh_ns, replugged):
        """net.ipv4.ip_forward as planned and, where managed (ctx.ipv6), IPv6 on or off for the namespace's
        new interfaces (its default) and each planned one. Called before the links go up: a node with IPv6
        off never sends the link-local chatter (router solicitations, MLD reports, duplicate address
        detection) that every node of its LANs would receive (400 frames per node, each through its
        plugs, switches and wirefilters, during a 1,000-node tree's swap-in)."""
        ctx = self.ctx
        labels = {FORWARDING: f"forwarding {'1' if self.forwarding else '0'}"}
        want = {FORWARDING: "1" if self.forwarding else "0"}
        for name, path in self.ipv6_paths().items():
            labels[path] = f"ipv6 {'on' if ctx.ipv6 else 'off'} {name}"
            want[path] = "0" if ctx.ipv6 else "1"
        if fresh_ns and not ctx.check:
            # a new namespace inherits the pnode's forwarding (net.core.devconf_inherit_init_net=0) and
            # the kernel's IPv6 defaults: read and set in one visit
            for path in sysctls_in_netns(self.ns, want):
                self.note(labels[path])
            return
        if fresh_ns:
            have = {path: "0" for path in want}  # the kernel's IPv6 defaults
            have[FORWARDING] = (read_text(FORWARDING) or "").strip()
        else:
            # the interfaces' values from the observation's link dump; "default" only matters where interfaces
            # are made (a new namespace, new taps or veth ends: set below then)
            have = {path: (o["ipv6"].get(name) or "").strip() for name, path in self.ipv6_paths().items()}
            have[FORWARDING] = None if o["forwarding"] is None else ("1" if o["forwarding"] else "0")
        if replugged and not ctx.check:
            # new taps or veth ends since the observation: their values are read where they are set
            differ = sysctls_in_netns(self.ns, want)
        else:
            differ = [path for path, value in want.items() if have.get(path) not in (value, "")]
            if differ and not ctx.check:
                sysctls_in_netns(self.ns, {path: want[path] for path in differ})
        for path in differ:
            self.note(labels[path])

    def apply_ip(self, ip, tc_ops):
        """Links up with their MACs, qdiscs (TC_OPS: {ifname: ops}), addresses and routes as planned.

        One sequence of netlink requests. A qdisc is set before its link goes up: on a running link
        the kernel waits for an RCU grace period to swap it, milliseconds per interface.
        """
        links = ip["links"]
        ops = []
        lo = links.get("lo")
        if not lo or not lo["up"]:
            ops.append(("link_set", "lo", True))
            self.note("lo up")
        for iface in self.interfaces:
            ifname = iface["ifname"]
            link = links.get(ifname) or BLANK_LINK
            if not links.get(ifname) and not self.ctx.check:
                raise RuntimeError(f"{self.name}: tap {ifname} is missing in {self.ns} after plugging")
            mac = str(iface.get("mac") or "").lower()
            if mac and link["mac"] != mac:
                ops.append(("link_set", ifname, None, mac))
                self.note(f"mac {ifname}")
            ops += tc_ops.get(ifname, [])
            want = [f"{iface['address']}/{int(iface['prefix'])}"] if iface.get("address") else []
            for addr in link["addresses"]:
                if addr not in want:
                    ops.append(("addr_del", ifname, addr))
                    self.note(f"addr del {ifname} {addr}")
            for addr in want:
                if addr not in link["addresses"]:
                    ops.append(("addr_add", ifname, addr))
                    self.note(f"addr {ifname} {addr}")
            if not link["up"]:
                ops.append(("link_set", ifname, True))
                self.note(f"up {ifname}")
        planned = {(r["dest"], r["gateway"]) for r in self.routes}
        present = set()
        for route in ip["routes"]:
            key = (route["dest"], route["gateway"])
            if key in planned and key not in present:
                present.add(key)
                continue
            ops.append(("route_del", route["dest"], route["gateway"], route["dev"]))
            self.note(f"route del {route['dest']}")
        for route in self.routes:
            key = (route["dest"], route["gateway"])
            if key in present:
                continue
            present.add(key)
            ops.append(("route_replace", route["dest"], route["gateway"], route.get("dev")))
            self.note(f"route {route['dest']}")
        if ops and not self.ctx.check:
            self.netlink(ops)

    def plan_tc(self, ip, recorded):
        """({ifname: netlink ops}, record): a root tbf where a bandwidth is planned, none elsewhere."""
        links = ip["links"]
        ops = {}
        record = {}
        for iface in self.interfaces:
            ifname = iface["ifname"]
            bandwidth = (iface.get("tc") or {}).get("bandwidth")
            qdisc = (links.get(ifname) or {}).get("qdisc")
            if bandwidth:
                rate = int(bandwidth)
                want = {"rate": rate, "burst": tbf_burst(rate)}
                record[ifname] = want
                if qdisc != "tbf" or recorded.get(ifname) != want:
                    ops[ifname] = [("qdisc_replace_tbf", ifname, rate, want["burst"], TBF_LATENCY_MS * 1000)]
                    self.note(f"tc {ifname}")
            elif qdisc == "tbf":
                ops[ifname] = [("qdisc_del_root", ifname)]
                self.note(f"tc del {ifname}")
        return ops, record

    def record_tc(self, record, recorded):
        """Keep RECORD (from plan_tc) in the node's record (node_record.py: a tbf's parameters are not read back)."""
        if not self.ctx.check and record != recorded:
            self.ctx.records.set(self.name, tc=record)

    def _start_needed(self, o):
        st = o["start"]
        argv = self.start_argv()
        if st["pid"]:
            return not (st["in_ns"] and st["argv"] == argv)
        if st["exit"] is not None and st["argv"] in (None, argv):
            return False  # finished: never rerun within a swap-in
        return True

    def apply_start(self, o):
        st = o["start"]
        if not self.wants_start():
            if st["pid"]:
                self.stopped.append(f"{self.name}.start")
                self.act("stop start command", self.stop_start, st["pid"])
            return
        if not self._start_needed(o):
            return
        if st["pid"]:
            self.restarted.append(f"{self.name}.start")
        self.started = True
        self.act("restart start command" if st["pid"] else "start command", self.start, st)

    def stop_start(self, pid):
        kill_pid(pid, None, self.ctx.timeout, group=True)
        remove_path(self.start_pidfile())

    def start(self, st):
        """Start the supervisor, detached in a session of its own (its process group is killed with it)."""
        # whatever is left of an earlier run (a killed supervisor leaves its children behind)
        for old in {st["pid"], st["old_pid"]} - {None}:
            kill_pid(old, None, self.ctx.timeout, group=True)
        pidfile = self.start_pidfile()
        remove_path(pidfile)
        argv = self.start_argv()
        os.makedirs(self.log_dir, mode=0o755, exist_ok=True)
        remove_path(os.path.join(self.log_dir, LOG_NAME))
        proc = subprocess.Popen(  # noqa: S603 - argv list; the command is one argument
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
        write_in_place(pidfile, f"{proc.pid}\n")
        write_json(self.ctx.rpath(f"{self.name}.start.json"), {"argv": argv, "pid": proc.pid})
