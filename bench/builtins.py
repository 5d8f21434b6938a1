#!/usr/bin/env python3
"""What the pnode base would cost with Ansible's builtins instead of the hv_experiment module.

Runs, on this machine (local connection, as a local pnode), a play doing what role hv does once
per swap-in: create the experiment's directories, write its three files, keep its block in a
hosts file, in two forms: builtin tasks (file, copy, blockinfile) and one hv_experiment call.
Each form runs once to set up, then N times with nothing to change (a re-run, and the steady
state of a swap-in that finds the base in place); the table gives the median wall time of those
runs and what that is against a 100-node swap-in (about 4 s here, bench/swapin.py).
Usage: python3 bench/builtins.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SWAPIN_100 = 4.0  # seconds, bench/swapin.py's 100-node LAN

BUILTINS = """---
- name: Base with builtins
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Directories
      ansible.builtin.file:
        path: "{{ root }}/{{ item }}"
        state: directory
        mode: "0755"
      loop: [config/exp.proj, log/exp.proj, run/1a2b3c4d, nodes/exp.proj]
    - name: Experiment files
      ansible.builtin.copy:
        dest: "{{ root }}/config/exp.proj/{{ item.name }}"
        content: "{{ item.content }}"
        mode: "0644"
      loop:
        - {name: hosts, content: "127.0.0.1 localhost\\n10.0.0.1 a\\n"}
        - {name: site.conf, content: "[globals]\\n"}
        - {name: pid_eid, content: "proj exp\\n"}
    - name: Hosts block
      ansible.builtin.blockinfile:
        path: "{{ root }}/etc-hosts"
        create: true
        mode: "0644"
        marker: "# {mark} containerize experiment exp.proj"
        block: "10.0.0.1 a\\n"
"""

MODULE = """---
- name: Base with hv_experiment
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Base
      containerize.deploy.hv_experiment:
        root: "{{ root }}"
        run_dir: "{{ root }}/run/1a2b3c4d"
        config_dir: "{{ root }}/config/exp.proj"
        log_dir: "{{ root }}/log/exp.proj"
        nodes_dir: "{{ root }}/nodes/exp.proj"
        exp_name: exp.proj
        project: proj
        experiment: exp
        hosts: [{address: 10.0.0.1, names: [a]}]
        etc_hosts: "{{ root }}/etc-hosts"
        ip_forward: false
"""

EMPTY = """---
- name: Nothing
  hosts: localhost
  gather_facts: false
  tasks: []
"""


def timed(book: Path, root: Path) -> float:
    env_cmd = [sys.executable, "-m", "ansible", "playbook", "-i", "localhost,", "-c", "local",
               "-e", f"root={root}", "-e", f"ansible_python_interpreter={sys.executable}", str(book)]
    started = time.monotonic()
    proc = subprocess.run(env_cmd, capture_output=True, text=True, cwd=REPO, check=False,
                          env={"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "PATH": "/usr/bin:/bin"})
    if proc.returncode:
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-2000:])
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for name, text in (("no tasks", EMPTY), ("builtins (8 task runs)", BUILTINS), ("hv_experiment", MODULE)):
            book, root = Path(tmp) / f"{len(results)}.yml", Path(tmp) / f"root{len(results)}"
            book.write_text(text)
            root.mkdir()
            (root / "etc-hosts").write_text("127.0.0.1 localhost\n")
            timed(book, root)  # set up
            results[name] = statistics.median(timed(book, root) for _ in range(repeat))
    base = results["no tasks"]
    print(f"{'form':<24} {'median s':>9} {'over no tasks':>14} {'of a 100-node swap-in':>22}")
    for name, seconds in results.items():
        extra = seconds - base
        print(f"{name:<24} {seconds:9.2f} {extra:14.2f} {100 * extra / SWAPIN_100:21.0f}%")


if __name__ == "__main__":
    main()
