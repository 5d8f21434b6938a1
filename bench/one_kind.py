"""What the per-kind benches (bench/qemu.py, bench/openvz.py) share: playbooks that run only the hv,
vde and one kind's role, so a swap-in's time is that kind's, and a timed ansible-playbook run."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.e2e import ENV, REPO

SWAPIN = """---
- name: Swap in (hv, vde, {kind})
  hosts: hv
  gather_facts: false
  roles:
    - role: containerize.deploy.hv
    - role: containerize.deploy.vde
    - role: containerize.deploy.{kind}
"""
SWAPOUT = """---
- name: Swap out ({kind}, vde, hv)
  hosts: hv
  gather_facts: false
  roles:
    - {{role: containerize.deploy.{kind}, vars: {{{kind}_state: absent}}}}
    - {{role: containerize.deploy.vde, vars: {{vde_state: absent}}}}
    - {{role: containerize.deploy.hv, vars: {{hv_state: absent}}}}
"""


def write_playbooks(workdir: Path, kind: str) -> tuple[Path, Path]:
    """swapin.yml and swapout.yml for KIND in WORKDIR."""
    swapin, swapout = workdir / "swapin.yml", workdir / "swapout.yml"
    swapin.write_text(SWAPIN.format(kind=kind))
    swapout.write_text(SWAPOUT.format(kind=kind))
    return swapin, swapout


def timed(cmd: list[str]) -> float:
    """Wall seconds of CMD, run from the checkout; a failed run ends the bench with its output."""
    start = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=REPO, check=False)
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return wall
