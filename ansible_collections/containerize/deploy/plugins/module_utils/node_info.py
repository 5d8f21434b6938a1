# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The info script and facts file of every node directory (/var/containers/info and /var/containers/facts
inside the node).

experiment_status keeps them for every kind of node (the readiness role's O(info_files)); process_nodes
keeps them for its own nodes, so that a pnode of process nodes is ready without a readiness call.
"""

from __future__ import annotations

import os

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import read_text, write_new_or_replace

INFO_SCRIPT_PATH = ("hv", "info.sh")  # below scripts_dir: the hv role's files/info.sh


def info_script(scripts_dir):
    """(text, path) of the hv role's info script below SCRIPTS_DIR; text is None when it cannot be read."""
    path = os.path.join(scripts_dir or "", *INFO_SCRIPT_PATH)
    return (read_text(path) if scripts_dir else None), path


def missing_script_message(path):
    return f"info_files needs the hv role's info script, {path} (scripts_dir): run the hv role first"


def facts_text(node, project, experiment, pnode):
    facts = {"node": node["name"], "kind": node.get("kind") or "process", "project": project,
             "experiment": experiment, "pnode": pnode}
    return "".join(f"{key}={value}\n" for key, value in facts.items())


def plan_info_files(nodes_dir, nodes, script, project, experiment, pnode):
    """The (label, path, text, mode) writes that put SCRIPT and the facts in the directory of each of NODES
    (NODES_DIR/NAME) that exists."""
    writes = []
    for node in nodes:
        nodedir = os.path.join(nodes_dir, node["name"])
        if not os.path.isdir(nodedir):
            continue
        facts = facts_text(node, project, experiment, pnode)
        for name, text, mode in (("info", script, 0o755), ("facts", facts, 0o644)):
            path = os.path.join(nodedir, name)
            if read_text(path) != text or (os.stat(path).st_mode & 0o777) != mode:
                writes.append((f"{node['name']} {name}", path, text, mode))
    return writes


def apply_info_files(writes, shared=None):
    """Make the WRITES of plan_info_files; a new info script is a link of SHARED's copy (shared_files.py)."""
    for _label, path, text, mode in writes:
        if shared is not None and os.path.basename(path) == "info":
            shared.place(path, "info", text, mode, write=write_new_or_replace)
        else:
            write_new_or_replace(path, text, mode)


def keep_info_files(ctx, nodes, result):
    """The info script and facts file in the directory of each of a node module's NODES (CTX: its
    spec.NodesContext, with `shared`: shared_files.SharedFiles); what was written in RESULT (process_nodes)."""
    p = ctx.module.params
    script, path = info_script(p["scripts_dir"])
    if script is None and not ctx.check:
        ctx.module.fail_json(msg=missing_script_message(path), **result)
    # the shared copy first: the nodes' links of it are then as planned
    shared_changed = bool(script) and ctx.shared.prepare("info", script, 0o755)
    # in check mode before the hv role put the script in place, each node's script would be written
    writes = plan_info_files(ctx.nodes_dir, nodes, script or "", ctx.project, ctx.experiment, p["pnode"])
    if not ctx.check:
        apply_info_files(writes, ctx.shared)
    result["info_files"] = [label for label, _path, _text, _mode in writes]
    result["changed"] = result["changed"] or bool(writes) or shared_changed
