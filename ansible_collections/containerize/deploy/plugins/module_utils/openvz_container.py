"""One openvz node of a pnode: observe it, plan what it needs, apply the plan (module_utils of openvz_nodes).

A container is made in two rounds, each observe -> plan -> apply (apply is skipped as a whole in
check mode): first its private area (the root from the template, the disk image, its size), then,
on what that left, the files it boots with, its node directory and its runtime (nspawn.py or
vzctl.py). A plan is a list of steps `(note, action)`: the note (None for a silent step) is what
the result reports, the action (None for a note only) what apply calls.
Standard library only (see daemons.py).
"""

from __future__ import annotations

import os
import shutil

from ansible_collections.containerize.deploy.plugins.module_utils import nspawn, vzctl
from ansible_collections.containerize.deploy.plugins.module_utils.daemons import (
    netns_path,
    read_json,
    read_text,
    remove_path,
    short_hash,
    write_json,
    write_new_or_replace,
)
from ansible_collections.containerize.deploy.plugins.module_utils.datapath_cpus import nodes_cpus
from ansible_collections.containerize.deploy.plugins.module_utils.image_cache import (
    ROOT_NEEDS,
    check_fits,
    plain_tarball,
    root_lacks,
    unpack,
)
from ansible_collections.containerize.deploy.plugins.module_utils.loop_disk import (
    MIN_IMAGE,
    detach_loops,
    human_size,
    images_usable,
    loop_backing_file,
    make_image,
    mount_image,
    mount_source,
    parse_size,
    resize_image,
    unmount_all,
)
from ansible_collections.containerize.deploy.plugins.module_utils.names import valid_name
from ansible_collections.containerize.deploy.plugins.module_utils.net_check import failed_update, problems_in
from ansible_collections.containerize.deploy.plugins.module_utils.overlay_root import (
    mount_overlay,
    overlay_lower,
    overlay_usable,
    shared_root,
)
from ansible_collections.containerize.deploy.plugins.module_utils.spec import NodesContext
from ansible_collections.containerize.deploy.plugins.module_utils.start_log import SCRIPT_NAME

TEMPLATE_EXTS = (".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.zst", ".tar.zstd", ".tzst", ".tar.bz2", ".tbz2", ".tar")
# the role's scripts (roles/openvz/files/, in SCRIPTS_DIR/openvz) and the shared supervisor (SCRIPTS_DIR/hv)
RC_LOCAL = ("openvz", "rc.local")
SUPERVISOR = ("hv", SCRIPT_NAME)


class Context(NodesContext):
    """The experiment on this pnode, as the module's arguments give it."""

    def __init__(self, module):
        super().__init__(module)
        p = module.params
        # private areas in ROOT/openvz/EXP_NAME/NODE
        self.base = os.path.join(self.root, "openvz", self.exp_name)
        self.stop_timeout = p["stop_timeout"]
        self.vz_conf_dir = p["vzctl_conf_dir"]
        self.runtime = self.pick_runtime(p["runtime"])
        self.disk = "vzctl" if self.runtime == "vzctl" else self.pick_disk(p["disk"])
        self.node_cpus = nodes_cpus(self.run_dir)  # off the data path's CPUs (datapath_cpus.py)
        self.scripts = {}

    @staticmethod
    def pick_runtime(wanted):
        if wanted != "auto":
            return wanted
        return "vzctl" if os.path.isdir("/proc/vz") and shutil.which("vzctl") else "nspawn"

    @staticmethod
    def pick_disk(wanted):
        if wanted != "auto":
            return wanted
        if overlay_usable():
            return "overlay"
        return "image" if images_usable() else "directory"

    def disk_for(self, size):
        """The disk mode of a new root of SIZE bytes: with `auto`, a size other than the default one
        (the node's own openvz_diskspace) is asked for, so it gets an ext4 image that enforces it."""
        if self.disk == "overlay" and self.module.params["disk"] == "auto" and images_usable():
            if size != parse_size(self.module.params["diskspace"]):
                return "image"
        return self.disk

    def load_scripts(self):
        """Read rc.local and the start command supervisor from scripts_dir (the roles put them there).

        In check mode a missing one (the role_files task ran in check mode too) counts as a file to write.
        """
        scripts_dir = self.module.params.get("scripts_dir")
        for key in (RC_LOCAL, SUPERVISOR):
            path = os.path.join(scripts_dir or "", *key)
            text = read_text(path) if scripts_dir else None
            if text is None and self.check:
                text = f"(not yet in {path})\n"
            if text is None:
                raise RuntimeError(f"no {key[1]} at {path} (scripts_dir): run the hv and openvz roles' "
                                   "role_files tasks first")
            self.scripts[key] = text

    def existing(self):
        """Node names with a private area of this experiment."""
        try:
            return sorted(n for n in os.listdir(self.base) if valid_name(n))
        except OSError:
            return []


def find_template(name, dirs):
    """Path of template NAME: itself when absolute, else the first DIR/NAME.EXT that exists."""
    if os.path.isabs(name):
        return (name if os.path.isfile(name) else None), [name]
    tried = []
    names = [name] if name.endswith(TEMPLATE_EXTS) else [name + ext for ext in TEMPLATE_EXTS]
    for directory in dirs:
        if not directory:
            continue
        for candidate in names:
            path = os.path.join(directory, candidate)
            tried.append(path)
            if os.path.isfile(path):
                return path, tried
    return None, tried


def safe_target(root, rel):
    """ROOT/REL for writing, refusing a parent that is (or goes through) a link leaving ROOT."""
    path = os.path.join(root, rel.lstrip("/"))
    parent = os.path.realpath(os.path.dirname(path))
    real_root = os.path.realpath(root)
    if not (parent == real_root or parent.startswith(real_root + os.sep)):
        raise RuntimeError(f"{rel} in {root} leads outside the container root; refusing to write it")
    return os.path.join(parent, os.path.basename(path))


def file_mode(path):
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        return None


class Container:
    """Observation, plan and actions for one openvz node."""

    def __init__(self, ctx, spec):
        p = ctx.module.params
        self.ctx = ctx
        self.spec = spec
        self.name = spec["name"]
        self.ns = spec.get("namespace") or ""
        self.hostname = spec.get("hostname") or self.name
        self.ghost = bool(spec.get("ghost"))
        self.startcmd = spec.get("startcmd") or ""
        self.template = spec.get("openvz_template") or p["template"]
        self.diskspace = str(spec.get("openvz_diskspace") or p["diskspace"])
        self.private = os.path.join(ctx.base, self.name)
        self.rootfs = os.path.join(self.private, "root")
        self.image = os.path.join(self.private, "disk.img")
        self.record_path = os.path.join(self.private, "private.json")
        self.console = os.path.join(self.private, "console.log")
        self.nodedir = os.path.join(ctx.nodes_dir, self.name)
        self.pidfile = ctx.rpath(f"{self.name}.openvz.pid")
        self.statefile = ctx.rpath(f"{self.name}.openvz.json")
        self.changes = []
        self.started = False
        self.restarted = False
        self.rebuilt = False  # the root was made, mounted or resized: a running container restarts
        self.bounced = None  # why a running container is stopped on the way (root, disk)
        self.before = {}
        self.after = {}
        self.boot_lines = 0
        self.proc = None
        self.template_path = None
        self.size = None

    def wants_start(self):
        return bool(self.startcmd.strip()) and not self.ghost

    # -- what the container boots with
    def files(self):
        """{path in the root: (content or None for absent, mode)}."""
        scripts = self.ctx.scripts
        keys = [str(k).strip() for k in self.ctx.module.params.get("authorized_keys") or [] if str(k).strip()]
        return {
            **({"root/.ssh/authorized_keys": ("".join(f"{k}\n" for k in keys), 0o600)} if keys else {}),
            "etc/hostname": (self.hostname + "\n", 0o644),
            "etc/hosts": (self.ctx.hosts, 0o644),
            "etc/rc.local": (scripts.get(RC_LOCAL), 0o755),
            "etc/containerize/start-command.sh": (scripts.get(SUPERVISOR), 0o755),
            "etc/containerize/startcmd": (self.startcmd + "\n" if self.wants_start() else None, 0o644),
            # what rc.local checks at boot: each interface with its address, each route (else log/failed)
            "etc/containerize/net": ("".join(f"{i['ifname']} {i['address']}/{int(i['prefix'])}\n"
                                             for i in self.spec.get("interfaces") or [] if i.get("address")), 0o644),
            "etc/containerize/routes": ("".join(f"{r['dest']} {r['gateway']}\n"
                                                for r in self.spec.get("routes") or []), 0o644),
            "etc/containerize/network.sh": (vzctl.network_script(self.spec) if self.ctx.runtime == "vzctl" else None,
                                            0o755),
        }

    def shares(self):
        """[(pnode path, mount point, read-only)] of the shares that exist on this pnode."""
        result = []
        for share in self.ctx.module.params["shares"]:
            path, mount = share.get("path"), share.get("mount") or share.get("path")
            if path and os.path.isdir(path):
                result.append((path, mount, bool(share.get("readonly"))))
        return result

    def mount_points(self):
        return ["var/containers"] + [mount.lstrip("/") for _path, mount, _ro in self.shares()]

    # -- observation
    def observe(self):
        o = {"record": read_json(self.record_path) or {}, "root_exists": os.path.isdir(self.rootfs),
             "mounted": mount_source(self.rootfs), "files": {}, "modes": {}}
        if o["root_exists"] and (o["record"].get("disk") not in ("image", "overlay") or o["mounted"]):
            for rel in self.files():
                path = os.path.join(self.rootfs, rel)
                o["files"][rel] = None if os.path.islink(path) else read_text(path)
                o["modes"][rel] = file_mode(path)
        o["missing_mount_points"] = [rel for rel in self.mount_points()
                                     if not os.path.isdir(os.path.join(self.rootfs, rel))]
        if self.ctx.runtime == "vzctl":
            o["running"] = vzctl.running(o["record"].get("ctid"))
        else:
            o.update(nspawn.observe(self))
            o["running"] = bool(o["pid"])
        return o

    # -- round 1: the private area
    def plan_private(self, o):
        """Steps that make the root from the template, mount its disk and give it its size."""
        ctx = self.ctx
        record = o["record"]
        self.size = parse_size(self.diskspace)
        self.template_path, tried = find_template(self.template, ctx.module.params["template_dirs"])
        if self.template_path is None and not (record.get("complete") and record.get("template") == self.template):
            raise RuntimeError(f"template {self.template!r} not found (tried {', '.join(tried) or 'no directory'})")
        disk = record.get("disk") if record.get("complete") else ctx.disk_for(self.size)
        if disk == "image" and self.size < MIN_IMAGE:
            raise RuntimeError(f"disk space {self.diskspace} is too small for a disk image (at least 32M)")
        lower_gone = disk == "overlay" and not os.path.isdir(record.get("lower") or "")
        if lower_gone or not (record.get("complete") and record.get("template") == self.template
                              and o["root_exists"]):
            self.rebuilt = True
            self.bounced = "root" if o["running"] else None
            steps = [(f"private root from {self.template}", lambda: self.make_root(o, disk))]
            if record.get("complete") and record.get("template") != self.template:
                steps.append((f"template changed from {record.get('template')}", None))
            return steps
        steps = []
        shared_dir = os.path.dirname(ctx.base)
        if disk == "image":
            if not o["mounted"]:
                self.rebuilt = True
                steps.append(("mount disk image", lambda: mount_image(self.image, self.rootfs, shared_dir)))
            elif loop_backing_file(o["mounted"]) not in (None, self.image, self.image + " (deleted)"):
                raise RuntimeError(f"{self.rootfs} has another file system mounted ({o['mounted']})")
        if disk == "overlay":
            if not o["mounted"]:
                self.rebuilt = True
                steps.append(("mount overlay root", lambda: mount_overlay(record["lower"], self.private,
                                                                          self.rootfs, shared_dir)))
            elif overlay_lower(self.rootfs) != record["lower"]:
                raise RuntimeError(f"{self.rootfs} has another file system mounted ({o['mounted']})")
        if record.get("size") != self.size:
            self.rebuilt = True
            steps.append((f"disk space {human_size(record.get('size') or 0)} -> {human_size(self.size)}", None))
            if disk == "image":
                self.bounced = "disk" if o["running"] else self.bounced
                steps.append((None, lambda: (self.stop(o), resize_image(self.image, self.size, self.rootfs,
                                                                        shared_dir))))
            steps.append((None, lambda: write_json(self.record_path, {**record, "size": self.size})))
        return steps

    def make_root(self, o, disk):
        """A new private area: stop, wipe, disk image, unpack the template, record what it was made from."""
        ctx = self.ctx
        self.stop(o)
        if os.path.lexists(self.private):
            left = unmount_all(self.private)
            if left:
                raise RuntimeError(f"cannot unmount {', '.join(left)}; not removing {self.private}")
            shutil.rmtree(self.private)
        os.makedirs(self.private, mode=0o700, exist_ok=True)
        os.makedirs(ctx.base, mode=0o755, exist_ok=True)
        os.makedirs(self.rootfs, mode=0o755, exist_ok=True)
        cache = os.path.join(ctx.root, "images", "openvz")
        record = {"template": self.template, "template_path": self.template_path, "disk": disk, "size": self.size}
        if disk == "overlay":
            try:
                record["lower"] = shared_root(plain_tarball(self.template_path, cache), cache, self.template_path)
                mount_overlay(record["lower"], self.private, self.rootfs, os.path.dirname(ctx.base))
            except (RuntimeError, OSError):
                unmount_all(self.private)
                shutil.rmtree(self.private, ignore_errors=True)
                raise
            write_json(self.record_path, {**record, "complete": True})
            return
        try:  # (a failure leaves no private area: no mount, no loop device, no half-unpacked root)
            tarball = plain_tarball(self.template_path, cache)
            if disk == "image":
                check_fits(tarball, self.size, f"disk space {self.diskspace}", self.template_path)
                make_image(self.image, self.size, self.rootfs, os.path.dirname(ctx.base))
            unpack(tarball, self.rootfs, self.template_path, f"disk space {self.diskspace}")
            lacks = root_lacks(self.rootfs, ROOT_NEEDS[:2])  # (its network is made from outside: no modprobe, no ip)
            if lacks:
                raise RuntimeError(f"template {self.template_path}: {'; '.join(lacks)}")
        except (RuntimeError, OSError):
            unmount_all(self.private)
            if os.path.exists(self.image):
                detach_loops(self.image)
            shutil.rmtree(self.private, ignore_errors=True)
            raise
        os.chmod(self.rootfs, 0o755)
        write_json(self.record_path, {**record, "complete": True})

    def stop(self, o):
        """Stop the container (whatever runs in its root) and forget its pid."""
        if self.ctx.runtime == "vzctl":
            vzctl.stop(self, o["record"].get("ctid"))
        else:
            nspawn.stop_many([self], self.ctx.stop_timeout)

    # -- round 2: node directory, files in the root, runtime
    def plan_nodedir(self):
        p = self.ctx.module.params
        want = {"pid": p["project"] + "\n", "eid": p["experiment"] + "\n"}
        if os.path.isdir(os.path.join(self.nodedir, "log")) and all(
            read_text(os.path.join(self.nodedir, k)) == v for k, v in want.items()
        ):
            return []

        def make():
            os.makedirs(os.path.join(self.nodedir, "log"), mode=0o755, exist_ok=True)
            for key, value in want.items():
                write_new_or_replace(os.path.join(self.nodedir, key), value)

        return [("node directory", make)]

    def plan_files(self, o):
        """(steps that write what differs in the root, the files whose change needs a new boot)."""
        steps, reboot = [], []
        for rel, (content, mode) in self.files().items():
            current = o["files"].get(rel)
            if content is None:
                if current is not None or os.path.islink(os.path.join(self.rootfs, rel)):
                    steps.append((f"remove /{rel}", lambda rel=rel: remove_path(safe_target(self.rootfs, rel))))
                    reboot.append(rel)
                continue
            if current == content and o["modes"].get(rel) == mode:
                continue
            steps.append((f"/{rel}", lambda rel=rel, content=content, mode=mode: self.write(rel, content, mode)))
            if rel.endswith(("startcmd", "network.sh")):
                reboot.append(rel)  # what a running container only reads at boot
        for rel in o["missing_mount_points"]:
            steps.append((f"mount point /{rel}", lambda rel=rel: self.make_mount_point(rel)))
        return steps, reboot

    def write(self, rel, content, mode):
        target = safe_target(self.rootfs, rel)
        os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
        if os.path.islink(target):
            os.unlink(target)
        tmp = f"{target}.containerize-tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, target)

    def make_mount_point(self, rel):
        target = safe_target(self.rootfs, rel)
        if os.path.lexists(target):
            os.unlink(target)
        os.makedirs(target, mode=0o755, exist_ok=True)

    # -- all of it
    def apply(self, steps):
        for note, action in steps:
            if note:
                self.changes.append(note)
            if action is not None and not self.ctx.check:
                action()

    def ensure(self):
        ctx = self.ctx
        o = self.observe()
        self.before = {"template": o["record"].get("template"), "disk": o["record"].get("disk"),
                       "size": o["record"].get("size"), "state": "running" if o["running"] else "stopped",
                       "files": {rel: short_hash(text) for rel, text in sorted(o["files"].items())}}
        steps = self.plan_private(o)
        self.apply(steps)
        if steps and not ctx.check:
            o = self.observe()  # round 2 plans on what round 1 made
        steps = self.plan_nodedir()
        file_steps, reboot = self.plan_files(o)
        steps += file_steps
        if ctx.runtime == "vzctl":
            steps += vzctl.plan_running(self, o, self.rebuilt, reboot)
        else:
            steps += nspawn.plan_running(self, o, self.rebuilt)
        self.apply(steps)
        self.after = {"template": self.template, "disk": (o["record"].get("disk") or ctx.disk),
                      "size": self.size, "state": "running",
                      "files": {rel: short_hash(content) for rel, (content, _m) in sorted(self.files().items())}}
        if ctx.runtime == "nspawn" and o["running"] and not (self.started or self.restarted):
            self.recheck_network()
        return self

    def recheck_network(self):
        """A running container that is not booted now: its network is checked from the pnode (rc.local checks
        it at boot), after process_nodes repaired what it could; log/failed says what is still missing."""
        log_dir = os.path.join(self.nodedir, "log")
        problems = problems_in(netns_path(self.ns), self.spec)
        update = failed_update(log_dir, problems)
        if update:
            self.before["network"] = " ".join((read_text(os.path.join(log_dir, "failed")) or "as planned").split())
            self.after["network"] = "; ".join(problems) or "as planned"
            self.apply([update])

    # -- booting
    def boot_count(self):
        return len((read_text(os.path.join(self.nodedir, "log", "boot.log")) or "").splitlines())

    def booted(self):
        """True once the container has run its rc.local since it was started (nspawn: raise when it died)."""
        if self.ctx.runtime == "nspawn":
            nspawn.check_alive(self)
        return self.boot_count() > self.boot_lines

    def console_tail(self):
        text = read_text(self.console) or ""
        return " | ".join(text.strip().splitlines()[-8:])
