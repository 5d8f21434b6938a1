"""What a qemu node is configured with: its plan checked, and the files of its configuration directory.

Each node's configuration is a directory of plain files (hostname, hosts, fstab and rc.local
blocks, accounts, network plan, start command) plus the qemu role's scripts (roles/qemu/files/, put
in SCRIPTS_DIR/qemu by the role) and the start command supervisor of every kind of node
(SCRIPTS_DIR/hv/start-command.sh). apply.sh applies it to the node's root.
Standard library only (see daemons.py).
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import re
import shlex
import stat

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import remove_path
from ansible_collections.containerize.deploy.plugins.module_utils.names import (
    IFNAME_RE,
    NAME_RE,
    SUN_PATH_MAX,
    planned_names,
)
from ansible_collections.containerize.deploy.plugins.module_utils.start_log import SCRIPT_NAME
from ansible_collections.containerize.deploy.plugins.module_utils.wirefilter import tbf_tc_args

NINEP_OPTS = "trans=virtio,version=9p2000.L,msize=262144"
ARCH_BINARY = {
    "x86_64": "qemu-system-x86_64",
    "amd64": "qemu-system-x86_64",
    "i386": "qemu-system-i386",
    "i686": "qemu-system-i386",
    "aarch64": "qemu-system-aarch64",
    "arm64": "qemu-system-aarch64",
}
# the scripts the module reads: {name: (role, file in SCRIPTS_DIR/role)}
SCRIPTS = {
    "init": ("qemu", "init"),
    "host-apply.sh": ("qemu", "host-apply.sh"),
    "apply.sh": ("qemu", "apply.sh"),
    "boot.sh": ("qemu", "boot.sh"),
    "agent.sh": ("qemu", "agent.sh"),
    "rc.local": ("qemu", "rc.local"),
    "containerize.service": ("qemu", "containerize.service"),
    SCRIPT_NAME: ("hv", SCRIPT_NAME),
}
MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def load_scripts(scripts_dir, warnings=None):
    """{name: text} of SCRIPTS, read from SCRIPTS_DIR (the hv and qemu roles put them there).

    A missing script is an error, or with WARNINGS (check mode, where the roles' role_files tasks
    wrote nothing yet) a line there and an empty text.
    """
    scripts, missing = {}, []
    for name, (role, filename) in SCRIPTS.items():
        path = os.path.join(scripts_dir or "", role, filename)
        try:
            with open(path, encoding="utf-8") as handle:
                scripts[name] = handle.read()
        except OSError:
            missing.append(path)
            scripts[name] = ""
    if missing:
        msg = f"no {', '.join(missing)} (scripts_dir): run the hv and qemu roles' role_files tasks first"
        if warnings is None:
            raise RuntimeError(msg)
        warnings.append(f"{msg}; check mode plans the nodes without them")
    return scripts


def write_file(path, data, mode=0o644):
    """Atomically make PATH hold DATA (str or bytes) with MODE; True when it changed."""
    if isinstance(data, str):
        data = data.encode()
    if same_file(path, data, mode):
        return False
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
    return True


def same_file(path, data, mode):
    """True when PATH holds DATA (bytes) with MODE."""
    try:
        with open(path, "rb") as handle:
            return handle.read() == data and stat.S_IMODE(os.stat(path).st_mode) == mode
    except OSError:
        return False


def tc_args(tc):
    """The `tc qdisc replace dev IF root` arguments for an end-node shaping plan, or ""."""
    if not tc:
        return ""
    bandwidth = tc.get("bandwidth")
    delay = float(tc.get("delay_ms") or 0)
    loss = float(tc.get("loss") or 0)
    if delay > 0 or loss > 0:
        args = ["netem"]
        if delay > 0:
            args.append(f"delay {delay:g}ms")
        if loss > 0:
            args.append(f"loss {loss * 100:g}%")
        if bandwidth:
            args.append(f"rate {int(bandwidth)}bit")
        return " ".join(args)
    if bandwidth:
        return " ".join(tbf_tc_args(int(bandwidth)))
    return ""


def validate(ctx, nodes):
    """Every problem of the NODES' plan entries (names, paths, arch, image, interfaces, routes)."""
    errors = []
    for name, g in planned_names(nodes, errors):
        for suffix in ("qmp", "serial.log", "qemu.json.tmp"):
            if len(ctx.rpath(f"{name}.{suffix}")) >= SUN_PATH_MAX:
                errors.append(f"node {name}: socket path under {ctx.run_dir} is too long")
                break
        arch = str(g.get("qemu_arch") or "x86_64")
        if arch not in ARCH_BINARY:
            errors.append(f"node {name}: qemu_arch {arch!r} is not supported ({', '.join(sorted(ARCH_BINARY))})")
        if not (g.get("qemu_url") or ctx.default_url):
            errors.append(f"node {name}: no image (qemu_url is empty and there is no default, qemu_default_url)")
        if any(c.isspace() for c in str(g.get("hostname") or "")):
            errors.append(f"node {name}: hostname has blanks")
        for iface in g.get("interfaces") or []:
            ifname = str(iface.get("ifname", ""))
            if not IFNAME_RE.match(ifname):
                errors.append(f"node {name}: interface name {ifname!r} is not valid")
            if not NAME_RE.match(str(iface.get("switch") or "")):
                errors.append(f"node {name} {ifname}: switch {iface.get('switch')!r} is not a valid id")
            if not MAC_RE.match(str(iface.get("mac") or "")):
                errors.append(f"node {name} {ifname}: MAC {iface.get('mac')!r} is not valid")
            if not iface.get("address") or not str(iface.get("prefix", "")).isdigit():
                errors.append(f"node {name} {ifname}: address and prefix are needed")
        for route in g.get("routes") or []:
            if not re.match(r"^[0-9./a-z]+$", str(route.get("dest") or "")) or not re.match(
                r"^[0-9.]+$", str(route.get("gateway") or "")
            ):
                errors.append(f"node {name}: bad route {route}")
    return errors


def resolve_shares(shares, warnings):
    """SHARES checked, those missing on the pnode left out (with a line in WARNINGS); ValueError when invalid."""
    resolved = []
    for share in shares:
        name = str(share.get("name", ""))
        if not NAME_RE.match(name):
            raise ValueError(f"share name {name!r} is not valid")
        path = os.path.abspath(str(share.get("path") or ""))
        mount = str(share.get("mount") or "")
        if not mount.startswith("/") or any(c.isspace() for c in mount):
            raise ValueError(f"share {name}: mount point {mount!r} must be an absolute path without blanks")
        if not os.path.isdir(path):
            warnings.append(f"share {name}: {path} does not exist on this pnode, nodes do not get {mount}")
            continue
        resolved.append({"name": name, "path": path, "mount": mount, "readonly": bool(share.get("readonly"))})
    return resolved


def resolve_users(users, warnings):
    """{passwd, group, shadow: lines} of the accounts USERS; ValueError when an entry is invalid."""
    passwd, group, shadow = [], [], []
    for user in users:
        if isinstance(user, str):
            try:
                pw = pwd.getpwnam(user)
            except KeyError:
                warnings.append(f"user {user} is unknown on this pnode: no account in the nodes")
                continue
            try:
                gname = grp.getgrgid(pw.pw_gid).gr_name
            except KeyError:
                gname = user
            entry = {"name": user, "uid": pw.pw_uid, "gid": pw.pw_gid, "group": gname,
                     "home": pw.pw_dir, "shell": pw.pw_shell or "/bin/sh"}  # fmt: skip
        elif isinstance(user, dict) and NAME_RE.match(str(user.get("name", ""))) and "uid" in user:
            entry = {
                "name": str(user["name"]),
                "uid": int(user["uid"]),
                "gid": int(user.get("gid", user["uid"])),
                "group": str(user.get("group", user["name"])),
                "home": str(user.get("home", f"/users/{user['name']}")),
                "shell": str(user.get("shell", "/bin/sh")),
            }
        else:
            raise ValueError(f"users: {user!r} is neither a user name nor a dict with name and uid")
        if any(":" in str(v) or "\n" in str(v) for v in entry.values()):
            raise ValueError(f"users: {entry['name']} has a field with ':' or a newline")
        passwd.append("{name}:x:{uid}:{gid}:{name}:{home}:{shell}".format(**entry))
        group.append("{group}:x:{gid}:".format(**entry))
        shadow.append("{name}:*:19000:0:99999:7:::".format(**entry))
    return {k: lines(v) for k, v in (("passwd", passwd), ("group", group), ("shadow", shadow))}


def lines(items):
    return "".join(f"{line}\n" for line in items)


def config_files(ctx, node):
    """{relative path: (content, mode)} of NODE's configuration directory."""
    scripts = ctx.scripts
    fstab = [f"cz-containers /var/containers 9p {NINEP_OPTS},nofail 0 0"]
    mounts = ["/var/containers"]
    for share in ctx.shares:
        opts = NINEP_OPTS + (",ro" if share["readonly"] else "") + ",nofail"
        fstab.append(f"cz-{share['name']} {share['mount']} 9p {opts} 0 0")
        mounts.append(share["mount"])
    net = []
    for iface in node.interfaces:
        line = f"{str(iface['mac']).lower()} {iface['ifname']} {iface['address']}/{int(iface['prefix'])}"
        net.append(f"{line} {tc_args(iface.get('tc'))}".rstrip())
    if ctx.authorized_keys:
        net.append(f"{ssh_mac(node.name)} {SSH_IFNAME} {SSH_NODE_ADDRESS}/{SSH_NET.split('/')[1]}")
    routes = [f"{r['dest']} {r['gateway']}" for r in node.spec.get("routes") or []]
    settings = (
        f"NODE={shlex.quote(node.name)}\nHOSTNAME={shlex.quote(node.hostname)}\n"
        f"FORWARDING={1 if node.spec.get('forwarding') else 0}\n"
    )
    files = {
        "apply.sh": (scripts["apply.sh"], 0o755),
        "hostname": (node.hostname + "\n", 0o644),
        "hosts": (ctx.hosts, 0o644),
        "fstab": (lines(fstab), 0o644),
        "mounts": (lines(mounts), 0o644),
        "rc.local": (scripts["rc.local"], 0o755),
        "containerize.service": (scripts["containerize.service"], 0o644),
        "passwd": (ctx.accounts["passwd"], 0o644),
        "group": (ctx.accounts["group"], 0o644),
        "shadow": (ctx.accounts["shadow"], 0o644),
        "etc-containerize/boot.sh": (scripts["boot.sh"], 0o755),
        "etc-containerize/agent.sh": (scripts["agent.sh"], 0o755),
        f"etc-containerize/{SCRIPT_NAME}": (scripts[SCRIPT_NAME], 0o755),
        "etc-containerize/settings": (settings, 0o644),
        "etc-containerize/net": (lines(net), 0o644),
        "etc-containerize/routes": (lines(routes), 0o644),
        "etc-containerize/startcmd": (node.startcmd + ("\n" if node.startcmd else ""), 0o644),
    }
    if ctx.authorized_keys:
        files["authorized_keys"] = (lines(ctx.authorized_keys), 0o600)
    return files


# ssh into a node (containerize ssh): a control NIC on qemu's user network, isolated (restrict=on),
# whose only way in is one forward from 127.0.0.1:PORT of the pnode to the node's sshd
SSH_NET = "169.254.22.0/24"
SSH_NODE_ADDRESS = "169.254.22.15"
SSH_IFNAME = "cz-ssh"


def ssh_mac(name):
    """The MAC of NODE's control NIC (locally administered, 0a:..., apart from the plan's 02:...)."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    return "0a:22:" + ":".join(digest[i:i + 2] for i in range(0, 8, 2))


def ssh_netdev(port):
    """qemu's -netdev of the control NIC: no way out, one way in from the pnode's loopback."""
    return f"user,id=czssh,restrict=on,net={SSH_NET},hostfwd=tcp:127.0.0.1:{int(port)}-{SSH_NODE_ADDRESS}:22"


def config_hash(files):
    """What identifies a configuration directory's content (FILES of config_files)."""
    digest = hashlib.sha256()
    for rel in sorted(files):
        content, mode = files[rel]
        digest.update(f"{rel}\0{mode:o}\0{len(content)}\0".encode())
        digest.update(content.encode())
    return digest.hexdigest()[:16]


def config_drift(config_dir, files):
    """(files of FILES that CONFIG_DIR lacks or holds otherwise, files of CONFIG_DIR not in FILES)."""
    differ = [rel for rel, (content, mode) in files.items()
              if not same_file(os.path.join(config_dir, rel), content.encode(), mode)]  # fmt: skip
    extra = []
    for dirpath, _dirs, names in os.walk(config_dir):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), config_dir)
            if rel not in files:
                extra.append(rel)
    return differ, extra


def write_config(config_dir, files):
    """Make CONFIG_DIR hold exactly FILES; True when anything changed."""
    differ, extra = config_drift(config_dir, files)
    for rel in differ:
        write_file(os.path.join(config_dir, rel), files[rel][0], files[rel][1])
    for rel in extra:
        remove_path(os.path.join(config_dir, rel))
    return bool(differ or extra)
