"""Inventory plugin: hosts and groups of a containerize experiment directory."""

from __future__ import annotations

DOCUMENTATION = r"""
name: containerize
short_description: Hosts and groups of a compiled containerize experiment
description:
  - Reads C(embedding.yaml) of an experiment directory written by C(containerize) and yields the
    pnodes (group C(hv)) and every virtual node, grouped by kind (C(qemu), C(openvz), C(process),
    C(embedded_pnode)) and by pnode (group C(pnode_NNNN) holds the pnode and its nodes).
  - Per-pnode and experiment-wide variables come from C(host_vars/) and C(group_vars/) beside the
    inventory source file, which Ansible loads by itself.
  - A pnode gets C(containerize_swapped_kinds), the kinds of nodes swapped in on it since its last
    complete swap-out, from its record C(swapped/PNODE.json) in the experiment directory (kept by role
    C(hv)); without a readable record it is not set, and the swapout playbook runs the qemu and openvz
    roles on the pnode whatever its plan.
  - With the C(local) target every pnode is this machine (local connection); the compiler gives each
    pnode its own C(containerize_root) and C(containerize_prefix) when several share it. With the
    C(testbed) target a pnode is reached over SSH at a name built from O(pnode_host_pattern).
  - The source file must be named C(containerize.yml) or C(containerize.yaml) (or end in them).
extends_documentation_fragment:
  - constructed
options:
  plugin:
    description: Marks this file as a source for this plugin.
    required: true
    choices: [containerize.deploy.containerize, containerize]
    type: str
  experiment_dir:
    description: The experiment directory, relative to the inventory source file.
    type: str
    default: ..
  target:
    description:
      - Where pnodes are. C(local) runs every pnode on this machine; C(testbed) reaches pnodes over SSH.
      - Defaults to the target recorded by the compiler.
    type: str
    choices: [local, testbed]
  pnode_host_pattern:
    description:
      - Python format string for a pnode's address with the C(testbed) target. Fields are C(index),
        C(pnode), C(eid), C(pid).
      - A pnode that the compiler gave a host of its own (C(containerize --pnode-hosts)) is reached at that host.
      - Defaults to the pattern recorded by the compiler (the site's C(pnode_host_pattern)), else
        C(pnode-{index:04d}.{eid}.{pid}).
    type: str
  site_defaults:
    description:
      - Files or directories of YAML variables set on group C(all) for every experiment, the site's
        defaults (the project's C(group_vars/all/)). They override the roles' defaults; the
        experiment's own C(group_vars/) and C(host_vars/), written by the compiler, override them.
      - A directory contributes its C(*.yml) and C(*.yaml) files in name order; a missing path is skipped.
    type: pathlist
    default: []
    ini:
      - section: containerize
        key: site_defaults
    env:
      - name: CONTAINERIZE_SITE_DEFAULTS
  gc_freeze:
    description:
      - Take every object the controller has made so far (Ansible's modules, configuration and plugins)
        out of the reach of Python's cyclic garbage collector (C(gc.freeze)), as a process that forks
        workers should (Ansible forks one per task and pnode). Collections then skip those objects in
        the controller, in every worker and at the controller's exit. On this project's 2-CPU VM that
        is ~0.08 s of a 1 s swap-in of 100 process nodes, most of it at exit.
      - Objects are still freed as soon as nothing refers to them; only cycles among them wait for the exit.
    type: bool
    default: true
    ini:
      - section: containerize
        key: gc_freeze
    env:
      - name: CONTAINERIZE_GC_FREEZE
"""

EXAMPLES = r"""
# experiments/proj/exp/inventory/containerize.yml (written by the compiler)
plugin: containerize.deploy.containerize
experiment_dir: ..

# ansible-inventory -i experiments/proj/exp/inventory --graph
# add keyed groups as with any constructed inventory:
# keyed_groups:
#   - key: containerize_kind
#     prefix: kind
"""

import gc
import os
import sys

import yaml
from ansible.errors import AnsibleParserError
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable

from ansible_collections.containerize.deploy.plugins.plugin_utils.swapped_kinds import read_record, record_path
from ansible_collections.containerize.deploy.plugins.plugin_utils.unsafe_yaml import Loader

KINDS = ("embedded_pnode", "qemu", "openvz", "process")
DEFAULT_PATTERN = "pnode-{index:04d}.{eid}.{pid}"


class InventoryModule(BaseInventoryPlugin, Constructable):
    NAME = "containerize.deploy.containerize"
    # Nothing this plugin sets is a template: names and paths from the experiment are data (the
    # default since ansible-core 2.19, stated so that it stays true).
    trusted_by_default = False

    def verify_file(self, path):
        return super().verify_file(path) and os.path.basename(path).endswith(("containerize.yml", "containerize.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        if self.get_option("gc_freeze"):
            gc.freeze()
        expdir = os.path.normpath(os.path.join(os.path.dirname(path), self.get_option("experiment_dir")))
        embedding = self._load_embedding(expdir)
        target = self.get_option("target") or embedding.get("target") or "local"
        pattern = self.get_option("pnode_host_pattern") or embedding.get("pnode_host_pattern") or DEFAULT_PATTERN
        pid, eid = embedding.get("project"), embedding.get("experiment")
        pnodes = embedding.get("pnodes")
        nodes = embedding.get("nodes")
        if not isinstance(pnodes, dict) or not isinstance(nodes, dict) or not pid or not eid:
            raise AnsibleParserError(f"{expdir}/embedding.yaml: needs project, experiment, pnodes and nodes; "
                                     "recompile the experiment with containerize")

        for key, value in self._site_defaults().items():
            self.inventory.set_variable("all", key, value)
        self.inventory.add_group("hv")
        for kind in KINDS:
            self.inventory.add_group(kind)
        for index, pnode in enumerate(pnodes):
            self.inventory.add_host(pnode, group="hv")
            host_vars = {"containerize_experiment_dir": expdir, "containerize_target": target}
            if target == "local":
                # the controller's own interpreter: it has what the modules need
                host_vars.update(ansible_connection="local", ansible_python_interpreter=sys.executable)
            else:
                host_vars.update(ansible_host=self._address(pnodes, index, pnode, pattern, eid, pid))
            swapped = read_record(record_path(expdir, pnode))
            if swapped is not None:
                host_vars["containerize_swapped_kinds"] = swapped
            for key, value in host_vars.items():
                self.inventory.set_variable(pnode, key, value)
            group = pnode.replace("-", "_")
            self.inventory.add_group(group)
            self.inventory.add_host(pnode, group=group)

        for name, node in nodes.items():
            if not isinstance(node, dict) or node.get("kind") not in KINDS or node.get("pnode") not in pnodes:
                raise AnsibleParserError(f"{expdir}/embedding.yaml: node {name!r} needs a kind in {KINDS} and a "
                                         "pnode listed under pnodes")
            self.inventory.add_host(name, group=node["kind"])
            self.inventory.add_host(name, group=node["pnode"].replace("-", "_"))
            facts = {"containerize_kind": node["kind"], "containerize_pnode": node["pnode"],
                     "containerize_ghost": bool(node.get("ghost")), "containerize_partition": node.get("partition"),
                     # a virtual node is managed through its pnode; running tasks on it runs them there
                     "ansible_connection": "local" if target == "local" else "ssh"}
            if target != "local":
                facts["ansible_host"] = self._address(pnodes, list(pnodes).index(node["pnode"]), node["pnode"],
                                                      pattern, eid, pid)
            for key, value in facts.items():
                self.inventory.set_variable(name, key, value)
            strict = self.get_option("strict")
            self._set_composite_vars(self.get_option("compose"), facts, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), facts, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), facts, name, strict=strict)

    @staticmethod
    def _address(pnodes, index, pnode, pattern, eid, pid):
        """Where a testbed pnode is reached: its own host (containerize --pnode-hosts), else PATTERN."""
        if isinstance(pnodes[pnode], dict) and pnodes[pnode].get("host"):
            return pnodes[pnode]["host"]
        try:
            return pattern.format(index=index, pnode=pnode, eid=eid, pid=pid)
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise AnsibleParserError(f"pnode_host_pattern {pattern!r} is not valid: {exc}") from exc

    def _site_defaults(self):
        """The variables of the site_defaults files, later files winning."""
        merged = {}
        for place in self.get_option("site_defaults") or []:
            if os.path.isdir(place):
                files = [os.path.join(place, n) for n in sorted(os.listdir(place)) if n.endswith((".yml", ".yaml"))]
            else:
                files = [place] if os.path.isfile(place) else []
            for path in files:
                try:
                    data = self.loader.load_from_file(path, cache="none")
                except Exception as exc:  # AnsibleParserError or a YAML error, with the file's name
                    raise AnsibleParserError(f"site defaults {path}: {exc}") from exc
                if data is None:
                    continue
                if not isinstance(data, dict):
                    raise AnsibleParserError(f"site defaults {path}: expected a mapping of variables")
                merged.update(data)
        return merged

    def _load_embedding(self, expdir):
        path = os.path.join(expdir, "embedding.yaml")
        try:
            with open(path, encoding="utf-8") as handle:
                data = yaml.load(handle, Loader=Loader)  # noqa: S506 - a safe loader
        except OSError as exc:
            raise AnsibleParserError(f"cannot read {path}: {exc.strerror}; is {expdir} an experiment "
                                     "directory written by containerize?") from exc
        except yaml.YAMLError as exc:
            raise AnsibleParserError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise AnsibleParserError(f"{path}: expected a mapping written by containerize")
        return data
