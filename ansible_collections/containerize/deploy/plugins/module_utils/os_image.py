"""The nodes' operating system image: a Debian root file system tarball built with mmdebstrap.

One tarball serves both kinds of node: qemu nodes boot it as a rootfs image (the pnode's kernel,
its modules over 9p, udev loads the NIC drivers) and openvz nodes unpack it as their template
(systemd as PID 1 under systemd-nspawn). It is built once, where the playbook runs, into

    DIR/NAME.tar.gz           the root (image kind "rootfs"; an openvz template named NAME)
    DIR/NAME.tar.gz.sha256    its sha256 (read by the qemu image cache as the image's checksum)
    DIR/NAME.recipe.json      what it was built from; a different recipe means "build again"
    DIR/NAME.build.log        the builder's progress, line by line, while it builds and after

A build goes to a temporary directory beside them and is renamed into place whole: a failed or
interrupted build leaves the previous image (or none) and nothing half-made.
Standard library only (see daemons.py).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time

from ansible_collections.containerize.deploy.plugins.module_utils.image_cache import sha256_file

DEFAULT_DIR = "/var/cache/containerize/images"
DEFAULT_NAME = "debian-12"
# bumped when what the builder does to a root changes (hooks, options): images built before are rebuilt
BUILDER_VERSION = 2

# What a node needs in its root: an init (systemd), udev and kmod (the NIC driver of a qemu node is
# loaded by udev; without them the node has no network), a shell and awk (the node's boot script),
# iproute2 (addresses, routes, tc), mount (the 9p shares), and what users log in and measure with.
# A profile's "init" picks the builder's hooks (systemd by default). debian-12-sysvinit is the second,
# different image the tests boot: sysvinit as PID 1 (its rc.local from initscripts' /etc/init.d/rc.local),
# ifupdown instead of systemd-networkd, no systemd at all.
PROFILES = {
    "debian-12": {
        "suite": "bookworm",
        "variant": "minbase",
        "packages": ["systemd-sysv", "udev", "kmod", "openssh-server", "iproute2", "iputils-ping", "python3",
                     "iperf3", "tcpdump", "procps", "netbase", "less"],
    },
    "debian-12-sysvinit": {
        "suite": "bookworm",
        "variant": "minbase",
        "init": "sysvinit",
        "packages": ["sysvinit-core", "ifupdown", "udev", "kmod", "iproute2", "iputils-ping", "procps", "netbase",
                     "acpid"],
    },
}

# the node's ssh host key is made at its first boot, so that no two nodes share it; one ed25519 key
# only (an RSA key costs seconds of CPU under TCG, while the other nodes boot)
SSH_KEYS_UNIT = """\
[Unit]
Description=containerize: make this node's own ssh host key
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key

[Install]
WantedBy=multi-user.target
"""

# smaller roots: no manual pages, documentation or translations (copyright files stay)
DPKG_OPTIONS = ["path-exclude=/usr/share/man/*", "path-exclude=/usr/share/doc/*",
                "path-include=/usr/share/doc/*/copyright", "path-exclude=/usr/share/locale/*",
                "path-include=/usr/share/locale/locale.alias"]


class BuildError(Exception):
    """The image could not be built; the message is one line."""


def recipe(name, packages=(), mirror=""):
    """What the image NAME is built from (its profile plus extra PACKAGES, from MIRROR)."""
    if name not in PROFILES:
        raise BuildError(f"no image profile {name!r}; known: {', '.join(sorted(PROFILES))}")
    profile = PROFILES[name]
    extra = [p for p in packages if p not in profile["packages"]]
    return {"name": name, "suite": profile["suite"], "variant": profile["variant"],
            "packages": list(profile["packages"]) + sorted(set(extra)), "mirror": mirror or "",
            "builder": BUILDER_VERSION}  # fmt: skip


class OsImage:
    """The image NAME in DIR: where its files are, whether it is current, and building it."""

    def __init__(self, directory=DEFAULT_DIR, name=DEFAULT_NAME, packages=(), mirror=""):
        self.dir = os.path.abspath(directory)
        self.name = name
        self.recipe = recipe(name, packages, mirror)
        self.path = os.path.join(self.dir, f"{name}.tar.gz")
        self.sha_path = self.path + ".sha256"
        self.recipe_path = os.path.join(self.dir, f"{name}.recipe.json")
        self.log_path = os.path.join(self.dir, f"{name}.build.log")

    def state(self, verify=True):
        """{"current": bool, "reason": why not, "sha256": the recorded checksum or None}."""
        try:
            with open(self.recipe_path, encoding="utf-8") as handle:
                built = json.load(handle)
            with open(self.sha_path, encoding="ascii") as handle:
                recorded = handle.read().split()[0].lower()
        except (OSError, ValueError, IndexError):
            return {"current": False, "reason": "not built", "sha256": None}
        if not os.path.isfile(self.path):
            return {"current": False, "reason": "not built", "sha256": None}
        if built != self.recipe:
            return {"current": False, "reason": "built from another recipe", "sha256": recorded}
        if verify and sha256_file(self.path) != recorded:
            return {"current": False, "reason": "sha256 mismatch (corrupt)", "sha256": recorded}
        return {"current": True, "reason": "", "sha256": recorded}

    def argv(self, out, unit_file):
        """The mmdebstrap command that writes the root to OUT (a .tar.gz)."""
        r = self.recipe
        hooks = ['rm -f "$1"/etc/ssh/ssh_host_*']
        if PROFILES[self.name].get("init", "systemd") == "systemd":
            hooks += self.systemd_hooks(unit_file)
        else:
            # no getty on the virtual consoles (a container and a qemu node with a serial console have none:
            # init would respawn them in vain)
            hooks.append(r'sed -i "s/^\([1-6]:[0-9]*:respawn:.*getty\)/#\1/" "$1/etc/inittab"')
            # a qemu node powers off when its power button is pressed (qemu's system_powerdown at swap-out)
            hooks.append('if [ -d "$1/etc/acpi/events" ]; then printf "event=button/power.*\\naction=/sbin/poweroff\\n"'
                         ' > "$1/etc/acpi/events/powerbtn"; fi')
        hooks += [
            'mkdir -p "$1/var/containers/log" "$1/users" "$1/proj" "$1/groups" "$1/share"',
            'printf "127.0.0.1 localhost\\n" > "$1/etc/hosts"',
            'echo localhost > "$1/etc/hostname"',
        ]
        argv = ["mmdebstrap", f"--variant={r['variant']}", f"--include={','.join(r['packages'])}"]
        argv += [f"--dpkgopt={option}" for option in DPKG_OPTIONS]
        argv += [f"--customize-hook={hook}" for hook in hooks]
        argv += [r["suite"], out]
        if r["mirror"]:
            argv.append(r["mirror"])
        return argv

    @staticmethod
    def systemd_hooks(unit_file):
        """The hooks of a systemd image: the node's own ssh host key at first boot, no timers."""
        wants = "/etc/systemd/system/multi-user.target.wants"
        return [
            f'cp {shlex.quote(unit_file)} "$1/etc/systemd/system/containerize-ssh-keys.service"',
            f'mkdir -p "$1{wants}" && ln -sf /etc/systemd/system/containerize-ssh-keys.service '
            f'"$1{wants}/containerize-ssh-keys.service"',
            'printf "HostKey /etc/ssh/ssh_host_ed25519_key\\n" > "$1/etc/ssh/sshd_config.d/containerize.conf"',
            # timers that would only compete with the experiment for CPU
            'for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service '
            'fstrim.timer; do ln -sf /dev/null "$1/etc/systemd/system/$unit"; done',
        ]

    def build(self, progress=None, timeout=3600):
        """Build the image (replacing the one there); PROGRESS(line) gets each line of the builder's output.

        Returns the new sha256. Raises BuildError with one line; nothing is left half-made.
        """
        if not shutil.which("mmdebstrap"):
            raise BuildError("mmdebstrap is not installed (apt-get install mmdebstrap; scripts/install.sh does)")
        os.makedirs(self.dir, mode=0o755, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=f".{self.name}.build.", dir=self.dir)
        started = time.monotonic()
        try:
            unit = os.path.join(tmp, "containerize-ssh-keys.service")
            with open(unit, "w", encoding="utf-8") as handle:
                handle.write(SSH_KEYS_UNIT)
            out = os.path.join(tmp, f"{self.name}.tar.gz")
            tail = self._run(self.argv(out, unit), progress, timeout, started)
            if not os.path.isfile(out) or os.path.getsize(out) == 0:
                raise BuildError(f"mmdebstrap wrote no image ({tail})")
            digest = sha256_file(out)
            with open(out + ".sha256", "w", encoding="ascii") as handle:
                handle.write(f"{digest}  {self.name}.tar.gz\n")
            with open(os.path.join(tmp, "recipe.json"), "w", encoding="utf-8") as handle:
                json.dump(self.recipe, handle, indent=1, sort_keys=True)
            os.chmod(out, 0o644)
            # the recipe goes last: until it is in place the image does not count as current
            try:
                os.unlink(self.recipe_path)
            except FileNotFoundError:
                pass
            os.replace(out, self.path)
            os.replace(out + ".sha256", self.sha_path)
            os.replace(os.path.join(tmp, "recipe.json"), self.recipe_path)
            return digest
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _run(self, argv, progress, timeout, started):
        """Run the builder, logging each line (with the seconds since STARTED); returns its last line."""
        last = error = ""
        with open(self.log_path, "w", encoding="utf-8") as log:
            log.write(f"# {shlex.join(argv)}\n")
            log.flush()
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True, errors="replace")  # fmt: skip
            except OSError as exc:
                raise BuildError(f"cannot run mmdebstrap: {exc.strerror or exc}") from None
            timer = threading.Timer(timeout, proc.kill)
            timer.start()
            try:
                for line in proc.stdout:
                    line = line.rstrip()
                    if not line:
                        continue
                    last = line
                    if line.startswith("E: ") and not error:
                        error = line[3:]
                    stamped = f"[{time.monotonic() - started:5.0f} s] {line}"
                    log.write(stamped + "\n")
                    log.flush()
                    if progress:
                        progress(stamped)
                rc = proc.wait()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            finally:
                timer.cancel()
        if rc != 0:
            why = "timed out" if rc < 0 and time.monotonic() - started >= timeout else f"exit status {rc}"
            raise BuildError(f"mmdebstrap failed ({why}): {error or last or 'no output'} (log: {self.log_path})")
        return last

    def files(self):
        """The image's files that exist."""
        return [p for p in (self.path, self.sha_path, self.recipe_path, self.log_path) if os.path.exists(p)]

    def remove(self):
        """Remove the image's files; returns the paths removed."""
        removed = self.files()
        for path in removed:
            os.unlink(path)
        return removed
