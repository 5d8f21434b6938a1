"""Shared helpers of this project's modules: pid and state files, daemons, namespaces.

Imported by the collection's modules (Ansible packs it with a module sent to a remote pnode; on a
local pnode plugin_utils/in_process.py runs the module in the worker, where it imports as usual).
Standard library only: it runs on the pnode's Python.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

NETNS_DIR = "/run/netns"


class Closing:
    """What holds an open socket or file: `with` closes it on the way out (the class defines close())."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


# --- files -----------------------------------------------------------------------------------------------


def read_text(path):
    """The text of PATH, None when it cannot be read."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def read_pid(path):
    """The pid written in PATH, None when missing or not a number."""
    try:
        with open(path, encoding="ascii") as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_json(path, default=None):
    """The JSON value in PATH, DEFAULT when missing, empty or not JSON."""
    text = read_text(path)
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


def write_new_or_replace(path, text, mode=0o644):
    """Write TEXT to PATH so that a reader never sees half of it.

    An existing file is replaced by renaming a complete copy over it. A new file is created
    exclusively and written directly (no reader expects it yet): one file-system operation instead of
    three, which matters where creating files is slow (0.4 ms each on this project's test VMs) and a
    swap-in writes several per node.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        tmp = f"{path}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        return
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(fd, mode)  # whatever the umask took away
        handle.write(text)


def write_json(path, data):
    """Write DATA as JSON to PATH (a reader sees the old or the new file, never half of one)."""
    write_new_or_replace(path, json.dumps(data, sort_keys=True) + "\n")


def remove_path(path):
    """Remove a file, link or directory tree; True when something was there."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def parse_json_stream(text):
    """The JSON values of TEXT written one after another (as `ip -j` batches print them)."""
    decoder = json.JSONDecoder()
    values, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return values
        value, pos = decoder.raw_decode(text, pos)
        values.append(value)


def short_hash(text):
    """A short fingerprint of TEXT (None stays None), recorded to notice a changed command."""
    return None if text is None else hashlib.sha1(text.encode()).hexdigest()[:12]


def norm_dest(dest):
    """A route destination as `ip` prints it: "default" or a network in CIDR form."""
    dest = str(dest or "default").strip()
    if dest in ("default", "0.0.0.0/0"):
        return "default"
    return str(ipaddress.ip_network(dest, strict=False))


# --- processes -------------------------------------------------------------------------------------------


def compact_invocation(module, bulky=("nodes", "hosts", "switches", "wirefilters", "uplinks")):
    """The result's `invocation` with the BULKY arguments (lists of hundreds of nodes) counted, not echoed.

    Ansible returns every argument in the result; for a 100-node pnode that is the whole plan
    copied, scanned for secrets, pickled and re-tagged once more per task, ~0.1 s each.
    """
    args = {
        key: f"({len(value)} items)" if key in bulky and isinstance(value, (list, dict)) else value
        for key, value in module.params.items()
    }
    return {"module_args": args}


def exit_result(module, result):
    """Exit MODULE with RESULT: its `diff` only in diff mode, its invocation compact (compact_invocation)."""
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result, invocation=compact_invocation(module))


def wait_for(predicate, timeout, step=0.01, max_step=0.1):
    """Poll PREDICATE (backing off from STEP to MAX_STEP seconds) until true or TIMEOUT; its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
        step = min(step * 1.5, max_step)


def run(argv, stdin=None, timeout=30):
    """Run ARGV (a list, never a shell string) and return (rc, stdout, stderr); (127, "", why) if it cannot."""
    try:
        proc = subprocess.run(  # noqa: S603
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, "", str(exc)
    return proc.returncode, proc.stdout, proc.stderr


def proc_cmdline(pid):
    """The arguments of PID, None when it is gone."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [arg.decode(errors="replace") for arg in handle.read().split(b"\0")[:-1]]
    except OSError:
        return None


def proc_start_ticks(pid):
    """When PID started, in clock ticks since boot (/proc/PID/stat field 22); None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def proc_alive(pid, needle=None):
    """True when PID runs (not a zombie) and, if NEEDLE is given, has it as one of its arguments."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("State:"):
                    if line.split()[1] in ("Z", "X"):
                        return False
                    break
        if needle is not None:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if needle.encode() not in handle.read().split(b"\0"):
                    return False
    except OSError:
        return False
    return True


def _signal(pid, group, signum):
    try:
        (os.killpg if group else os.kill)(pid, signum)
    except OSError:
        pass


def kill_many(targets, timeout):
    """Stop many processes at once: TERM to all, wait up to TIMEOUT, then KILL the rest.

    TARGETS holds (pid, needle) or (pid, needle, group): NEEDLE must be among the arguments of a
    live PID (None: no check); GROUP kills the whole process group PID leads, even when PID itself
    is gone. Returns the pids that were running.
    """
    targets = [(t[0], t[1], t[2] if len(t) > 2 else False) for t in targets if t[0]]
    running = []
    for pid, needle, group in targets:
        alive = proc_alive(pid, needle)
        if alive:
            running.append((pid, group))
        if alive or group:
            _signal(pid, group, signal.SIGTERM)

    def all_dead():
        return not any(proc_alive(pid) for pid, _group in running)

    if running and not wait_for(all_dead, timeout):
        for pid, group in running:
            if proc_alive(pid):
                _signal(pid, group, signal.SIGKILL)
        wait_for(all_dead, timeout)
    for pid, _needle, group in targets:
        if group:
            _signal(pid, True, signal.SIGKILL)  # whatever of the group ignored TERM
    return {pid for pid, _group in running}


def kill_pid(pid, needle, timeout, group=False):
    """Stop PID (its process group when GROUP): TERM, then KILL. True when it was running."""
    return bool(pid) and pid in kill_many([(pid, needle, group)], timeout)


def stray_processes(run_dir, owned, keep=()):
    """Pids of live processes that name a path in RUN_DIR among their arguments, that OWNED(argv) claims
    and that are not in KEEP.

    A daemon whose pid file was lost (the run directory deleted, a crash between spawn and record) is
    still running and still holds its sockets and taps; the module that owns such processes stops them
    before starting new ones, and at swap-out, so nothing of the experiment outlives it.
    """
    prefix = run_dir.rstrip("/") + "/"
    keep = set(keep)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in keep or int(entry) == os.getpid():
            continue
        argv = proc_cmdline(entry)
        if argv and any(arg.startswith(prefix) for arg in argv) and owned(argv) and proc_alive(int(entry)):
            found.append(int(entry))
    return sorted(found)


def recorded_pids(run_dir):
    """Pids of the live processes named by the pid files (NAME.pid) of RUN_DIR."""
    try:
        names = os.listdir(run_dir)
    except OSError:
        return set()
    pids = set()
    for name in names:
        if name.endswith(".pid"):
            path = os.path.join(run_dir, name)
            pid = read_pid(path)
            if pid and proc_alive(pid, path):
                pids.add(pid)
    return pids


def stop_strays(run_dir, owned, timeout, check=False):
    """Stop the stray processes of RUN_DIR that OWNED(argv) claims (see stray_processes); their pids.

    A stray that leads its process group (a start command supervisor) is stopped with its group.
    """
    strays = stray_processes(run_dir, owned, recorded_pids(run_dir))
    if strays and not check:
        targets = []
        for pid in strays:
            try:
                leads = os.getpgid(pid) == pid
            except OSError:
                continue
            targets.append((pid, None, leads))
        kill_many(targets, timeout)
    return strays


def spawn_daemon(argv, timeout):
    """Run a self-daemonizing program in its own session; return (rc, output).

    The output goes to an in-memory file, not a pipe (the daemon keeps its copy of the descriptor
    open, so a pipe would never end) nor a temporary file (creating a file costs ~0.5 ms on a busy
    ext4, once per node plug of a swap-in).
    """
    fd = os.memfd_create("spawn_daemon", os.MFD_CLOEXEC) if hasattr(os, "memfd_create") else None
    with (os.fdopen(fd, "w+b") if fd is not None else tempfile.TemporaryFile()) as out:
        try:
            proc = subprocess.run(  # noqa: S603
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
                timeout=timeout,
                check=False,
            )
            rc = proc.returncode
        except subprocess.TimeoutExpired:
            rc = -1
        except OSError as exc:
            return 127, str(exc)
        out.seek(0)
        return rc, out.read().decode(errors="replace").strip()


# --- network namespaces ----------------------------------------------------------------------------------


def netns_path(ns):
    return os.path.join(NETNS_DIR, ns)


def netns_inode(ns):
    """Inode of a mounted namespace file, None when missing, 0 when the file is not a namespace."""
    try:
        st = os.stat(netns_path(ns))
        parent = os.stat(NETNS_DIR)
    except OSError:
        return None
    return st.st_ino if st.st_dev != parent.st_dev else 0


def proc_netns_inode(pid):
    """Inode of PID's network namespace, None when it is gone."""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


# --- real-time priority ----------------------------------------------------------------------------------

# An experiment's data-path daemons (switches, wirefilters, tap plugs) run round-robin real time at this
# priority, as `chrt -a -r -p 20 PID` would set them: a frame waits for no ordinary process to give up
# a CPU, which on 2 busy cores cut a 20 ms star's worst round trip from 25-41 ms to 21.3 ms (issue 15).
# The daemons also run on the data path's own CPUs where the pnode has them (datapath_cpus.py).
# Below the kernel's own threads (50) and far below its watchdogs (99); the kernel's RT throttling
# (sched_rt_runtime_us) still leaves ordinary processes 5 % of each CPU should one of them spin.
RT_PRIORITY = 20


def _threads(pid):
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except (OSError, ValueError):
        return []


def is_realtime(pid, priority=RT_PRIORITY, cpus=None):
    """True when every thread of PID runs SCHED_RR at PRIORITY, on exactly CPUS (a set; None: any) (None
    when PID is gone)."""
    threads = _threads(pid)
    if not threads:
        return None
    try:
        return all(
            os.sched_getscheduler(tid) == os.SCHED_RR and os.sched_getparam(tid).sched_priority == priority
            and (cpus is None or os.sched_getaffinity(tid) == cpus)
            for tid in threads
        )
    except OSError:
        return None


def make_realtime(pid, priority=RT_PRIORITY, cpus=None):
    """Set every thread of PID to SCHED_RR at PRIORITY, on CPUS (a set; None: leave them); True when it
    is so afterwards.

    Best effort: where the pnode refuses (no CAP_SYS_NICE, an RT budget of 0 for the cgroup, CPUs outside
    its cpuset) the daemon keeps its ordinary priority, and the caller does not report a change it could
    not make.
    """
    for tid in _threads(pid):
        try:
            if cpus is not None:
                os.sched_setaffinity(tid, cpus)
            os.sched_setscheduler(tid, os.SCHED_RR, os.sched_param(priority))
        except OSError:
            return False
    return bool(is_realtime(pid, priority, cpus))
