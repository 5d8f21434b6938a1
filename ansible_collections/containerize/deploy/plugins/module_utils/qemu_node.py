"""One qemu node on a pnode: what it should be, what it is, and the steps between (plan, then apply).

QemuNode.plan() observes the node and decides (nothing is written); QemuNode.apply() does what the plan
says, and is skipped as a whole in check mode. remove_plan() and remove_apply() do the same for
nodes that go away.
Standard library only (see daemons.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    proc_alive,
    proc_cmdline,
    read_json,
    read_pid,
    read_text,
    remove_path,
    run,
    wait_for,
    write_json,
)
from ansible_collections.containerize.deploy.plugins.module_utils.names import NAME_RE
from ansible_collections.containerize.deploy.plugins.module_utils.node_status import BOOTED_MARKER, boot_failure
from ansible_collections.containerize.deploy.plugins.module_utils.qemu_config import (
    ARCH_BINARY,
    config_drift,
    config_files,
    config_hash,
    same_file,
    ssh_mac,
    ssh_netdev,
    write_config,
    write_file,
)
from ansible_collections.containerize.deploy.plugins.module_utils.qmp import qopt, scan_qemu, stop_nodes
from ansible_collections.containerize.deploy.plugins.module_utils.spec import NodesContext
from ansible_collections.containerize.deploy.plugins.module_utils.start_log import read_start_log


def short_hash(value):
    return None if value is None else hashlib.sha256(json.dumps(value).encode()).hexdigest()[:12]


def mountpoints():
    points = set()
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) > 4:
                    points.add(fields[4].encode().decode("unicode_escape"))
    except OSError:
        pass
    return points


class Context(NodesContext):
    """The module's arguments and what every node of the pnode shares (kernel, initramfs, images...)."""

    def __init__(self, module):
        super().__init__(module)
        p = module.params
        self.scripts_dir = p["scripts_dir"]
        self.default_url = p["default_url"] or ""
        self.checksums = {k: str(v) for k, v in (p["checksums"] or {}).items()}
        self.cache = os.path.abspath(p["image_cache"] or os.path.join(self.root, "images"))
        self.kernel = p["kernel"] or None
        self.kernel_append = p["kernel_append"] or ""
        self.busybox = p["busybox"]
        self.machine = p["machine"]
        self.memory = p["memory"]
        self.cpus = p["cpus"]
        self.tcg_tb_size = p["tcg_tb_size"]
        self.timeout = p["timeout"]
        self.stop_timeout = p["stop_timeout"]
        self.qemu_dir = os.path.join(self.root, "qemu", self.exp_name)
        self.warnings = []
        self.scripts = {}
        self.kernel_version = None
        self.initrd = None
        self.accel = "tcg"
        self.images = {}
        self.shares = []
        self.accounts = {"passwd": "", "group": "", "shadow": ""}
        self.switch_pids = {}
        self.authorized_keys = [str(k).strip() for k in p.get("authorized_keys") or [] if str(k).strip()]

    def switch_pid(self, switch):
        if switch not in self.switch_pids:
            pidfile = self.rpath(f"{switch}.pid")
            pid = read_pid(pidfile)
            self.switch_pids[switch] = pid if pid and proc_alive(pid, pidfile) else None
        return self.switch_pids[switch]


BUS0_NICS = 16
BRIDGE_SLOTS = 30


class QemuNode:
    """Observation, decisions (plan) and actions (apply) for one qemu node."""

    def __init__(self, ctx, spec):
        self.ctx = ctx
        self.spec = spec
        self.name = spec["name"]
        self.ghost = bool(spec.get("ghost"))
        self.hostname = spec.get("hostname") or self.name
        self.startcmd = "" if self.ghost else (spec.get("startcmd") or "")
        self.interfaces = list(spec.get("interfaces") or [])
        self.url = spec.get("qemu_url") or ctx.default_url
        self.arch = str(spec.get("qemu_arch") or "x86_64")
        self.memory = int(spec.get("qemu_memory") or ctx.memory)
        self.cpus = int(spec.get("qemu_cpus") or ctx.cpus)
        self.image = ctx.images.get(self.url)
        self.qdir = os.path.join(ctx.qemu_dir, self.name)
        self.nodedir = os.path.join(ctx.nodes_dir, self.name)
        self.config_dir = os.path.join(self.qdir, "config")
        self.pidfile = ctx.rpath(f"{self.name}.qemu.pid")
        self.qmp = ctx.rpath(f"{self.name}.qmp")
        self.serial = ctx.rpath(f"{self.name}.serial.log")
        self.record_path = ctx.rpath(f"{self.name}.qemu.json")
        self.ssh_port_file = ctx.rpath(f"{self.name}.ssh-port")
        self.ssh_port = None
        self.changes = []
        self.started = False
        self.restarted = False
        self.before = {}
        self.after = {}
        self.steps = set()

    def note(self, what):
        self.changes.append(what)

    # -- what the node should be
    def config_files(self):
        """{relative path: (content, mode)} of the node's configuration directory."""
        return config_files(self.ctx, self)

    def config_hash(self, files):
        return config_hash(files)

    def node_files(self):
        return {"pid": self.ctx.project + "\n", "eid": self.ctx.experiment + "\n"}

    def argv(self):
        ctx = self.ctx
        kind = self.image.kind
        root = "9p:cz-root" if kind == "rootfs" else "auto"
        append = f"console=ttyS0 panic=10 net.ifnames=0 biosdevname=0 cz.root={root}"
        if ctx.kernel_append:
            append += " " + ctx.kernel_append
        argv = [ARCH_BINARY[self.arch], "-name", self.name, "-machine", ctx.machine]
        if ctx.accel == "kvm":
            argv += ["-accel", "kvm", "-cpu", "host"]
        else:
            argv += ["-accel", f"tcg,tb-size={ctx.tcg_tb_size}" if ctx.tcg_tb_size else "tcg"]
        argv += [
            "-m", str(self.memory), "-smp", str(self.cpus),
            "-nodefaults", "-no-user-config", "-display", "none",
            "-daemonize", "-pidfile", self.pidfile,
            "-qmp", f"unix:{qopt(self.qmp)},server=on,wait=off",
            "-chardev", f"file,id=serial0,path={qopt(self.serial)}", "-serial", "chardev:serial0",
            "-kernel", ctx.kernel, "-initrd", ctx.initrd, "-append", append,
            "-device", "virtio-rng-pci",
        ]  # fmt: skip
        if kind == "rootfs":
            argv += ["-virtfs", f"local,id=cz-root,path={qopt(self.root_dir())},mount_tag=cz-root,"
                                "security_model=passthrough,multidevs=remap"]  # fmt: skip
        else:
            argv += ["-drive", f"file={qopt(self.disk())},if=virtio,format=qcow2,discard=unmap"]
            argv += ["-virtfs", f"local,id=cz-config,path={qopt(self.config_dir)},mount_tag=cz-config,"
                                "security_model=none,readonly=on"]  # fmt: skip
        argv += ["-virtfs", f"local,id=cz-modules,path={qopt('/lib/modules/' + ctx.kernel_version)},"
                            "mount_tag=cz-modules,security_model=none,readonly=on"]  # fmt: skip
        argv += ["-virtfs", f"local,id=cz-containers,path={qopt(self.nodedir)},mount_tag=cz-containers,"
                            "security_model=none"]  # fmt: skip
        for share in ctx.shares:
            opts = f"local,id=cz-{share['name']},path={qopt(share['path'])},mount_tag=cz-{share['name']},"
            opts += "security_model=none,readonly=on" if share["readonly"] else "security_model=passthrough"
            argv += ["-virtfs", opts]
        # past BUS0_NICS interfaces the NICs go behind PCI bridges (the pc machine's bus 0 has 32 slots in
        # all, shared with the 9p devices): 28 and more interfaces per node
        bridged = len(self.interfaces) > BUS0_NICS
        for bridge in range((len(self.interfaces) + BRIDGE_SLOTS - 1) // BRIDGE_SLOTS if bridged else 0):
            argv += ["-device", f"pci-bridge,id=czbr{bridge},chassis_nr={bridge + 1}"]
        for index, iface in enumerate(self.interfaces):
            netdev = f"vde,id=net{index},sock={qopt(ctx.rpath(str(iface['switch']) + '.ctl'))}"
            if iface.get("port"):
                netdev += f",port={int(iface['port'])}"
            device = f"virtio-net-pci,netdev=net{index},mac={str(iface['mac']).lower()}"
            if bridged:
                device += f",bus=czbr{index // BRIDGE_SLOTS},addr={index % BRIDGE_SLOTS + 1:#x}"
            argv += ["-netdev", netdev, "-device", device]
        if ctx.authorized_keys:
            argv += ["-netdev", ssh_netdev(self.pick_ssh_port()),
                     "-device", f"virtio-net-pci,netdev=czssh,mac={ssh_mac(self.name)}"]  # fmt: skip
        return argv

    def pick_ssh_port(self):
        """The pnode loopback port forwarded to the node's sshd: the one recorded, else a free one."""
        if self.ssh_port is None:
            try:
                self.ssh_port = int((read_text(self.ssh_port_file) or "").split()[0])
            except (ValueError, IndexError):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", 0))
                    self.ssh_port = probe.getsockname()[1]
        return self.ssh_port

    def root_dir(self):
        return os.path.join(self.qdir, "root")

    def disk(self):
        return os.path.join(self.qdir, "disk.qcow2")

    # -- observation
    def observe(self):
        """{pid (None when gone), record, argv: what the kernel says the process runs (None when gone)}."""
        pid = read_pid(self.pidfile)
        alive = bool(pid and proc_alive(pid, self.pidfile))
        return {"pid": pid if alive else None, "record": read_json(self.record_path) or {},
                "argv": proc_cmdline(pid) if alive else None}

    def status(self, pid=None, record=None):
        if pid is None:
            observed = self.observe()
            pid, record = observed["pid"], observed["record"]
        record = record or {}
        exit_code = read_start_log(os.path.join(self.nodedir, "log"))[1]
        if not pid:
            return {"state": "dead", "pid": None, "exit": exit_code}
        failed = boot_failure(os.path.join(self.nodedir, "log"), record)
        if failed:
            return {"state": "failed", "pid": pid, "exit": exit_code, "detail": failed}
        state = "running"
        started = float(record.get("started") or 0)
        try:
            if os.stat(os.path.join(self.nodedir, "log", "booted")).st_mtime >= started - 2:
                state = "booted"
        except OSError:
            pass
        if state == "running" and BOOTED_MARKER in (read_text(self.serial) or ""):
            state = "booted"
        return {"state": state, "pid": pid, "exit": exit_code}

    # -- plan: what to do (reads only)
    def plan(self):
        """Observe and decide: the notes (changes), the diff (before, after) and the steps apply() takes."""
        ctx = self.ctx
        o = self.observe()
        record = o["record"]
        self.pid = o["pid"]
        self.files = self.config_files()
        self.chash = config_hash(self.files)
        self.argv_ = self.argv()
        self.switches = {str(i["switch"]): ctx.switch_pid(str(i["switch"])) for i in self.interfaces}
        self.image_id = f"{self.url}@{self.image.ident}"
        self.before = {
            "state": "running" if self.pid else "dead",
            "image": record.get("image"),
            "config": record.get("config") if self.pid else None,
            "argv": short_hash(record.get("argv")) if self.pid else None,
        }
        self.after = {"state": "running", "image": self.image_id, "config": self.chash, "argv": short_hash(self.argv_)}
        if any(not same_file(os.path.join(self.nodedir, n), t.encode(), 0o644) for n, t in self.node_files().items()):
            self.note("node directory")
        reasons = []
        # the process's own arguments too: a qemu started by hand with its pid file is not the recorded one
        if record.get("argv") != self.argv_ or (self.pid and o["argv"] != self.argv_):
            reasons.append("argv")
        if record.get("config") != self.chash:
            reasons.append("config")
        if record.get("image") != self.image_id:
            reasons.append("image")
        if any(record.get("switch_pids", {}).get(s) != pid for s, pid in self.switches.items()):
            reasons.append("switch restarted")
        if self.pid and not reasons:
            return self
        if self.pid:
            self.note(f"restart ({', '.join(reasons)})")
            self.restarted = True
            self.steps.add("stop")
        else:
            self.note("start")
            self.started = True
        self.steps.add("start")
        if any(config_drift(self.config_dir, self.files)):
            self.note("config")
        if record.get("image") not in (None, self.image_id):
            self.note("reset disk")
            self.steps.add("reset")
        if self.image.kind == "disk":
            if "reset" in self.steps or not os.path.exists(self.disk()):
                self.note("disk")
        elif "reset" in self.steps or self.root_dir() not in mountpoints():
            self.note("root")
        return self

    # -- apply: do it (never in check mode)
    def apply(self):
        ctx = self.ctx
        missing = sorted(s for s, pid in self.switches.items() if pid is None)
        if missing:
            raise RuntimeError(f"switch {', '.join(missing)} of {self.name} is not running (run vde_network first)")
        # node directory (served as /var/containers)
        os.makedirs(os.path.join(self.nodedir, "log"), mode=0o755, exist_ok=True)
        os.makedirs(os.path.join(self.nodedir, "exec"), mode=0o755, exist_ok=True)
        for name, text in self.node_files().items():
            write_file(os.path.join(self.nodedir, name), text)
        if "start" not in self.steps:
            return self
        if "stop" in self.steps:
            stop_nodes([(self.name, self.pid, self.qmp)], ctx.stop_timeout, ctx.timeout)
        write_config(self.config_dir, self.files)
        if "reset" in self.steps:
            self.discard_disk()
        self.prepare_disk()
        if self.image.kind == "rootfs":
            changes = self.apply_config()
            if changes:
                self.note("root: " + ", ".join(changes))
        # fresh status, then start
        for name in ("booted", "failed", "start_command.log", "start_command.out", "start_command.err"):
            remove_path(os.path.join(self.nodedir, "log", name))
        for path in (self.pidfile, self.qmp, self.serial):
            remove_path(path)
        if self.ssh_port is not None:
            write_file(self.ssh_port_file, f"{self.ssh_port}\n", 0o644)
        started = time.time()
        rc, out, err = run(self.argv_, timeout=ctx.timeout)
        ok = rc == 0 and wait_for(lambda: proc_alive(read_pid(self.pidfile), self.pidfile), ctx.timeout)
        if not ok:
            raise RuntimeError(f"qemu for {self.name} did not start (rc={rc}): {(err or out).strip()[-800:]}")
        write_json(
            self.record_path,
            {"argv": self.argv_, "config": self.chash, "image": self.image_id, "switch_pids": self.switches,
             "started": started, "pid": read_pid(self.pidfile)},
        )  # fmt: skip
        return self

    def prepare_disk(self):
        os.makedirs(self.qdir, mode=0o755, exist_ok=True)
        if self.image.kind == "disk":
            if not os.path.exists(self.disk()):
                rc, _out, err = run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", self.image.disk_format(),
                                     "-b", self.image.base, self.disk()], timeout=60)  # fmt: skip
                if rc != 0:
                    raise RuntimeError(f"{self.name}: qemu-img create failed: {err.strip()}")
            return
        root = self.root_dir()
        if root in mountpoints():
            return
        upper, work = os.path.join(self.qdir, "upper"), os.path.join(self.qdir, "work")
        for path in (upper, work, root):
            os.makedirs(path, mode=0o755, exist_ok=True)
        rc, _out, err = run(["mount", "-t", "overlay", f"cz-{self.name}", "-o",
                             f"lowerdir={self.image.base},upperdir={upper},workdir={work}", root],
                            timeout=60)  # fmt: skip
        if rc != 0:
            raise RuntimeError(f"{self.name}: cannot mount the overlay root: {err.strip()}")

    def apply_config(self, check=False):
        """Apply the configuration to the rootfs on the pnode (files/host-apply.sh); returns what changed."""
        argv = ["unshare", "--mount", "--propagation", "private", self.ctx.busybox, "sh", "-c",
                self.ctx.scripts["host-apply.sh"], "sh", self.root_dir(), self.config_dir, self.ctx.busybox,
                "check" if check else ""]  # fmt: skip
        rc, out, err = run(argv, timeout=self.ctx.timeout)
        if rc != 0:
            raise RuntimeError(f"{self.name}: applying the configuration failed: {(err or out).strip()[-800:]}")
        return [line[len("changed ") :] for line in out.splitlines() if line.startswith("changed ")]

    def discard_disk(self):
        root = self.root_dir()
        if root in mountpoints() and run(["umount", root], timeout=60)[0] != 0:
            run(["umount", "-l", root], timeout=60)
        for name in ("disk.qcow2", "upper", "work", "root"):
            remove_path(os.path.join(self.qdir, name))


# ----------------------------------------------------------------------------------------------
# nodes that go away


def find_recorded(ctx):
    """Node names recorded in the run directory or present in the experiment's qemu directory."""
    names = set(scan_qemu(ctx.run_dir))
    if os.path.isdir(ctx.run_dir):
        for entry in os.listdir(ctx.run_dir):
            for suffix in (".qemu.json", ".qemu.pid"):
                if entry.endswith(suffix) and NAME_RE.match(entry[: -len(suffix)]):
                    names.add(entry[: -len(suffix)])
    if os.path.isdir(ctx.qemu_dir):
        names.update(n for n in os.listdir(ctx.qemu_dir) if NAME_RE.match(n))
    return names


def remove_plan(ctx, names):
    """(qemu processes to stop [(name, pid, qmp)], nodes with something to remove) of nodes NAMES."""
    nodes = [QemuNode(ctx, {"name": name}) for name in sorted(names)]
    scanned = scan_qemu(ctx.run_dir)
    targets = []
    for node in nodes:
        pid = node.observe()["pid"] or scanned.get(node.name)
        if pid:
            targets.append((node.name, pid, node.qmp))
    mounted = mountpoints()
    leftovers = [g for g in nodes if g.root_dir() in mounted or any(os.path.lexists(p) for p in remove_paths(g))]
    return targets, leftovers


def remove_paths(node):
    return [node.qdir, node.nodedir, node.pidfile, node.qmp, node.serial, node.record_path, node.ssh_port_file]


def remove_apply(ctx, targets, leftovers):
    """Stop TARGETS, then remove every trace of LEFTOVERS (remove_plan's answer)."""
    if targets:
        stop_nodes(targets, ctx.stop_timeout, ctx.timeout)
    for node in leftovers:
        node.discard_disk()
        for path in remove_paths(node):
            remove_path(path)
