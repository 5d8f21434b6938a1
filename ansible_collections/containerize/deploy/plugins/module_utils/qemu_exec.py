"""`containerize exec` for qemu nodes: the pnode's side of the node's exec agent (roles/qemu/files/agent.sh).

Run as a program on the node's pnode:
    python3 -m ansible_collections.containerize.deploy.plugins.module_utils.qemu_exec \
        NODE_DIR [--timeout SECONDS] -- CMD [ARGS...]
Standard library only (see daemons.py).
"""

from __future__ import annotations

import os
import shlex
import sys
import time

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import read_text, remove_path

PROGRAM = "python3 -m ansible_collections.containerize.deploy.plugins.module_utils.qemu_exec"


def node_exec(node_dir, command, timeout=None, claim_timeout=15.0, stdout=None, stderr=None):
    """Run COMMAND (argv list) in the qemu node whose node directory is NODE_DIR; return its exit status.

    The command is written as NODE_DIR/exec/ID.cmd (a shell script `exec ARGV...`); the node's
    agent (started at boot, polling every 0.2 s) renames it ID.run, runs it as root in / with stdin
    from /dev/null, and writes ID.out, ID.err, then ID.rc. Output is copied to STDOUT and STDERR
    (binary streams, default this process's) while the command runs. Returns 255 when the agent
    did not pick the command up within CLAIM_TIMEOUT seconds (node down or not booted), 124 when
    TIMEOUT seconds passed (the command keeps running in the node).
    """
    stdout = stdout or sys.stdout.buffer
    stderr = stderr or sys.stderr.buffer
    xdir = os.path.join(node_dir, "exec")
    if not os.path.isdir(xdir):
        stderr.write(f"containerize exec: {xdir} does not exist: is the node swapped in?\n".encode())
        stderr.flush()
        return 255
    ident = f"{os.getpid()}-{time.time_ns()}"
    base = os.path.join(xdir, ident)
    script = "exec " + " ".join(shlex.quote(str(arg)) for arg in command) + "\n"
    with open(base + ".cmd.new", "w", encoding="utf-8") as handle:
        handle.write(script)
    os.rename(base + ".cmd.new", base + ".cmd")
    start = time.monotonic()
    offsets = {".out": 0, ".err": 0}
    streams = {".out": stdout, ".err": stderr}

    def pump():
        for suffix, stream in streams.items():
            try:
                with open(base + suffix, "rb") as handle:
                    handle.seek(offsets[suffix])
                    data = handle.read()
            except OSError:
                continue
            if data:
                offsets[suffix] += len(data)
                stream.write(data)
                stream.flush()

    try:
        while True:
            if os.path.exists(base + ".rc"):
                pump()
                text = (read_text(base + ".rc") or "").strip()
                return int(text) if text.lstrip("-").isdigit() else 255
            claimed = not os.path.exists(base + ".cmd")
            elapsed = time.monotonic() - start
            if not claimed and elapsed > claim_timeout:
                stderr.write(b"containerize exec: the node's agent did not answer (is the node booted?)\n")
                stderr.flush()
                return 255
            if timeout is not None and elapsed > timeout:
                pump()
                stderr.write(f"containerize exec: timed out after {timeout:g} s\n".encode())
                stderr.flush()
                return 124
            pump()
            time.sleep(0.05)
    finally:
        for suffix in (".cmd", ".cmd.new", ".run", ".out", ".err", ".rc"):
            if suffix in (".run", ".out", ".err") and not os.path.exists(base + ".rc"):
                continue  # still running in the node: leave its files
            remove_path(base + suffix)


def main(argv=None):
    """`NODE_DIR [--timeout S] -- CMD [ARGS...]`: the exit status of CMD in the node."""
    argv = sys.argv[1:] if argv is None else argv
    usage = f"usage: {PROGRAM} NODE_DIR [--timeout SECONDS] -- CMD [ARGS...]\n"
    if "--" not in argv:
        sys.stderr.write(usage)
        return 2
    split = argv.index("--")
    head, command = argv[:split], argv[split + 1 :]
    timeout = None
    if len(head) == 3 and head[1] == "--timeout":
        timeout = float(head[2])
        head = head[:1]
    if len(head) != 1 or not command:
        sys.stderr.write(usage)
        return 2
    return node_exec(head[0], command, timeout=timeout)


if __name__ == "__main__":
    sys.exit(main())
