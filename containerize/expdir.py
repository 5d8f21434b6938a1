"""Read a compiled experiment directory for the commands that operate a running experiment.

Only what the compiler wrote is read (``embedding.yaml``, ``inventory/group_vars/all.yml``,
``inventory/host_vars/PNODE.yml``); the layout is docs/experiment-directory.md. Errors are
``ContainerizeError`` with one line that names the file.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from functools import cached_property
from pathlib import Path

import yaml

from ansible_collections.containerize.deploy.plugins.plugin_utils.modules import COLLECTION
from ansible_collections.containerize.deploy.plugins.plugin_utils.modules import collection_module as library_module  # noqa: F401

from .errors import ContainerizeError
from .writers.inventory import pnode_paths
from .writers.yamlout import LOADER

REPO = COLLECTION.parents[2]  # the checkout (or site-packages) that holds ansible_collections/
PLAYBOOKS = COLLECTION / "playbooks"
PATH_KEYS = set(pnode_paths("", "", ""))
_LOADER = LOADER  # the safe loader that reads the compiler's !unsafe strings as plain data


def load_yaml(path: Path, what: str = "an experiment directory"):
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.load(handle, Loader=_LOADER)
    except OSError as exc:
        raise ContainerizeError(f"cannot read {path}: {exc.strerror}; is it {what}?") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ContainerizeError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None


class ExperimentDir:
    """The compiled experiment at PATH (a directory with embedding.yaml and inventory/)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if not (self.path / "embedding.yaml").is_file():
            raise ContainerizeError(f"{self.path}: not an experiment directory (no embedding.yaml); "
                                    "compile one with `containerize PROJECT EXPERIMENT TOPOLOGY`")
        self._host_vars: dict[str, dict] = {}

    @cached_property
    def embedding(self) -> dict:
        data = load_yaml(self.path / "embedding.yaml")
        if not isinstance(data, dict) or not isinstance(data.get("nodes"), dict) \
                or not isinstance(data.get("pnodes"), dict):
            raise ContainerizeError(f"{self.path}/embedding.yaml: needs pnodes and nodes; recompile the experiment")
        return data

    @cached_property
    def group_vars(self) -> dict:
        path = self.path / "inventory" / "group_vars" / "all.yml"
        return load_yaml(path) if path.exists() else {}

    @property
    def project(self) -> str:
        return str(self.embedding.get("project", ""))

    @property
    def experiment(self) -> str:
        return str(self.embedding.get("experiment", ""))

    @property
    def name(self) -> str:
        """PROJECT/EXPERIMENT, as status_request names an experiment."""
        return f"{self.project}/{self.experiment}"

    @property
    def exp_name(self) -> str:
        return str(self.group_vars.get("containerize_exp_name") or f"{self.experiment}.{self.project}")

    @property
    def exp_tag(self) -> str:
        tag = self.group_vars.get("containerize_exp_tag")
        if not tag:
            import hashlib

            tag = hashlib.sha1(f"{self.project}/{self.experiment}".encode()).hexdigest()[:8]
        return str(tag)

    @property
    def target(self) -> str:
        return str(self.embedding.get("target") or "local")

    @property
    def pnodes(self) -> dict[str, dict]:
        return self.embedding["pnodes"]

    @property
    def nodes(self) -> dict[str, dict]:
        return self.embedding["nodes"]

    def host_vars_path(self, pnode: str) -> Path:
        return self.path / "inventory" / "host_vars" / f"{pnode}.yml"

    def pnode_vars(self, pnode: str) -> dict:
        if pnode not in self._host_vars:
            data = load_yaml(self.host_vars_path(pnode))
            if not isinstance(data, dict):
                raise ContainerizeError(f"{self.host_vars_path(pnode)}: expected a mapping; recompile the experiment")
            self._host_vars[pnode] = data
        return self._host_vars[pnode]

    def forget(self, pnode: str) -> None:
        self._host_vars.pop(pnode, None)

    def root(self, pnode: str) -> str:
        return str(self.pnode_vars(pnode).get("containerize_root") or "/var/containers")

    def paths(self, pnode: str) -> dict[str, str]:
        """The compiler's paths of the experiment on PNODE (computed alike for a directory written before them)."""
        pvars = self.pnode_vars(pnode)
        return {**pnode_paths(self.root(pnode), self.exp_name, self.exp_tag),
                **{k: str(v) for k, v in pvars.items() if k in PATH_KEYS}}

    def run_dir(self, pnode: str) -> str:
        return self.paths(pnode)["containerize_run_dir"]

    def node_dir(self, node: str) -> str:
        return f"{self.paths(self.pnode_of(node))['containerize_nodes_dir']}/{node}"

    def pnode_of(self, node: str) -> str:
        entry = self.nodes.get(node)
        if entry is None:
            known = list(self.nodes)
            more = ", ..." if len(known) > 10 else ""
            raise ContainerizeError(f"{self.path}: no node {node!r} in this experiment "
                                    f"(nodes: {', '.join(known[:10])}{more})")
        return str(entry["pnode"])

    def pnode_nodes(self, pnode: str) -> list[dict]:
        return list(self.pnode_vars(pnode).get("containerize_nodes") or [])

    def node_plan(self, node: str) -> dict:
        pnode = self.pnode_of(node)
        for plan in self.pnode_nodes(pnode):
            if plan.get("name") == node:
                return plan
        raise ContainerizeError(f"{self.path}: node {node!r} is missing from {pnode}'s host_vars; recompile")

    def module_params(self, pnode: str, **extra) -> dict:
        """Arguments of this project's per-pnode modules (as the roles pass them)."""
        pvars = self.pnode_vars(pnode)
        params = {
            "root": self.root(pnode), "run_dir": self.run_dir(pnode), "exp_name": self.exp_name,
            "project": self.project, "experiment": self.experiment, "pnode": pnode,
            "nodes": self.pnode_nodes(pnode), "wirefilters": list(pvars.get("containerize_wirefilters") or []),
        }  # fmt: skip
        params.update(extra)
        return params


def ansible_env() -> dict[str, str]:
    """The environment of an Ansible run: this checkout's ansible.cfg unless the user names one.

    Installed with pip (no checkout around the collection), Ansible's defaults serve: it finds the
    collection in site-packages and its inventory plugin through the `auto` plugin.
    """
    env = dict(os.environ)
    if (REPO / "ansible.cfg").is_file():
        env.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    return env


def run_playbook(expdir: ExperimentDir, playbook: str, extra_vars: dict, quiet: bool = True) -> tuple[int, str]:
    """Run playbooks/PLAYBOOK against the experiment; (exit status, output tail)."""
    import json

    argv = ["ansible-playbook", "-i", str(expdir.path / "inventory"), "-e", json.dumps(extra_vars),
            str(PLAYBOOKS / playbook)]  # fmt: skip
    try:
        proc = subprocess.run(argv, cwd=REPO, env=ansible_env(), check=False, text=True,  # noqa: S603
                              stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None)
    except OSError as exc:
        raise ContainerizeError(f"cannot run ansible-playbook: {exc.strerror}") from None
    return proc.returncode, (proc.stdout or "")[-3000:]


def playbook_json(expdir: ExperimentDir, playbook: str, extra_vars: dict, what: str):
    """Run a playbook that writes its findings as JSON to the file named by extra var ``*_output``."""
    import json

    with tempfile.TemporaryDirectory(prefix="containerize-") as tmp:
        out = Path(tmp) / "out.json"
        key = next(k for k in extra_vars if k.endswith("_output"))
        rc, tail = run_playbook(expdir, playbook, {**extra_vars, key: str(out)})
        if not out.exists():
            last = [line for line in tail.splitlines() if line.strip()][-1:] or ["no output"]
            raise ContainerizeError(f"{what}: ansible-playbook {playbook} failed (exit {rc}): {last[0].strip()}")
        return json.loads(out.read_text())


class Progress:
    """A progress bar on stderr, drawn only on a terminal: ``update(done, total)``, then ``close()``."""

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream or sys.stderr
        self.active = self.stream.isatty()
        self.drawn = False

    def update(self, done: int, total: int) -> None:
        if not self.active:
            return
        width = 30
        filled = int(width * done / total) if total else width
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False
