"""hv_experiment and a pnode's hosts file: made when the pnode has none, removed again by swap-out.

The module's own function runs on a hosts file in a temporary directory (the real /etc/hosts of
this machine is not touched); tests/test_own_hosts.py checks the same on real hosts without one.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.containerize.deploy.plugins.module_utils.datapath_cpus import cpu_list
from ansible_collections.containerize.deploy.plugins.modules.hv_experiment import MADE_MARK, sync_hosts_block


def _params(path, exp_name, state="present", hosts_block=True):
    hosts = [{"address": "10.0.0.1", "names": ["a", "a-lan0"]}, {"address": "10.0.0.2", "names": ["b"]}]
    return {"etc_hosts": str(path), "exp_name": exp_name, "state": state, "hosts_block": hosts_block,
            "hosts": hosts}


def test_made_file_is_removed_by_the_last_swap_out(tmp_path):
    path = tmp_path / "hosts"
    changed, before, after = sync_hosts_block(_params(path, "one.proj"), check=False)
    assert changed and before == "" and path.read_text() == after
    assert after.startswith(MADE_MARK) and "127.0.0.1\tlocalhost" in after and "10.0.0.1 a a-lan0" in after
    assert sync_hosts_block(_params(path, "one.proj"), check=False)[0] is False  # idempotent
    assert sync_hosts_block(_params(path, "two.proj"), check=False)[0] is True  # a second experiment

    # the first leaves: the file stays for the second
    assert sync_hosts_block(_params(path, "one.proj", "absent"), check=False)[0] is True
    assert path.exists() and "two.proj" in path.read_text() and "one.proj" not in path.read_text()

    # check mode tells, and touches nothing
    text = path.read_text()
    changed, before, after = sync_hosts_block(_params(path, "two.proj", "absent"), check=True)
    assert changed and before == text and after == "" and path.read_text() == text

    # the last leaves: the pnode had no hosts file, and has none again
    assert sync_hosts_block(_params(path, "two.proj", "absent"), check=False)[0] is True
    assert not path.exists()
    assert sync_hosts_block(_params(path, "two.proj", "absent"), check=False) == (False, None, None)


def test_check_mode_makes_nothing(tmp_path):
    path = tmp_path / "hosts"
    changed, before, after = sync_hosts_block(_params(path, "one.proj"), check=True)
    assert changed and before == "" and after.startswith(MADE_MARK)
    assert not path.exists()


def test_a_file_that_was_there_or_was_written_into_is_kept(tmp_path):
    path = tmp_path / "hosts"
    path.write_text("127.0.0.1\tlocalhost\n")
    sync_hosts_block(_params(path, "one.proj"), check=False)
    sync_hosts_block(_params(path, "one.proj", "absent"), check=False)
    assert path.read_text() == "127.0.0.1\tlocalhost\n"

    path.unlink()
    sync_hosts_block(_params(path, "one.proj"), check=False)
    with path.open("a") as handle:
        handle.write("192.0.2.7\tprinter\n")  # someone else's line: the file is theirs too now
    sync_hosts_block(_params(path, "one.proj", "absent"), check=False)
    assert path.exists() and "printer" in path.read_text() and "one.proj" not in path.read_text()


def test_present_without_a_block_keeps_a_made_file(tmp_path):
    path = tmp_path / "hosts"
    sync_hosts_block(_params(path, "one.proj"), check=False)
    sync_hosts_block(_params(path, "one.proj", hosts_block=False), check=False)  # block taken out, nodes run on
    assert path.exists() and path.read_text().startswith(MADE_MARK)


def _scripts_params(tmp_path, state="present"):
    root = tmp_path / "containers"
    dirs = {k: str(root / k / "e.p") for k in ("config", "log", "nodes")}
    return {"root": str(root), "config_dir": dirs["config"], "log_dir": dirs["log"], "nodes_dir": dirs["nodes"],
            "run_dir": str(root / "run" / "1a2b3c4d"), "exp_name": "e.p", "project": "p", "experiment": "e",
            "hosts": [], "site": {}, "ip_forward": False, "state": state,
            "datapath_cpus": "none", "switches": [], "wirefilters": [],
            "scripts_dir": str(root / "config" / "e.p" / "scripts" / "hv"),
            "scripts": {"start-command.sh": {"content": "#!/bin/sh\n", "mode": "0755"},
                        "info.sh": {"content": "echo info\n", "mode": "0755"}}}


def test_shared_scripts_are_kept_exactly_in_the_same_call(tmp_path):
    """hv_experiment puts the hv role's scripts in place (no role_files call of its own): stale ones go."""
    from ansible_collections.containerize.deploy.plugins.modules.hv_experiment import apply, plan

    params = _scripts_params(tmp_path)
    scripts = tmp_path / "containers" / "config" / "e.p" / "scripts" / "hv"
    steps, _before, after = plan(params)
    assert str(scripts / "info.sh") in after and not scripts.exists()  # planning touches nothing
    apply(steps)
    assert (scripts / "info.sh").read_text() == "echo info\n" and (scripts / "info.sh").stat().st_mode & 0o777 == 0o755
    assert plan(params)[0] == []  # as planned: nothing to do

    (scripts / "stale.sh").write_text("old\n")
    (scripts / "info.sh").chmod(0o600)
    steps, before, _after = plan(params)
    assert [what for what, _action, _arg in steps] == [f"put the shared scripts in {scripts} (info.sh, -stale.sh)"]
    assert before[str(scripts / "info.sh")].startswith("(mode 0600)")
    apply(steps)
    assert sorted(p.name for p in scripts.iterdir()) == ["info.sh", "start-command.sh"]
    assert (scripts / "info.sh").stat().st_mode & 0o777 == 0o755 and plan(params)[0] == []

    apply(plan(_scripts_params(tmp_path, "absent"))[0])
    assert not (tmp_path / "containers").exists()


def test_network_is_left_to_role_vde_only_when_something_must_come_first():
    """With network=true the base call runs the VDE network unless its packages are still to be installed
    or its wirefilters wait for the shaping element that role vde builds after this call."""
    from ansible_collections.containerize.deploy.plugins.modules.hv_experiment import network_waits

    unshaped = {"wirefilters": [], "wire_program": None}
    shaped = {"wirefilters": [{"id": "w0", "left": "p0", "right": "s0"}], "wire_program": None}
    assert not network_waits(unshaped, missing=[])
    assert network_waits(unshaped, missing=["vde2"])
    assert network_waits(shaped, missing=[])
    assert not network_waits({**shaped, "wire_program": "wirefilter"}, missing=[])


def test_the_cpu_split_is_written_to_the_run_directory_and_taken_back(tmp_path):
    """With a data path (switches) on a pnode of two CPUs or more, auto gives it the last CPU; none takes it back."""
    from ansible_collections.containerize.deploy.plugins.modules.hv_experiment import apply, plan

    cpus = sorted(os.sched_getaffinity(0))
    params = {**_scripts_params(tmp_path), "datapath_cpus": "auto", "switches": [{"id": "s0"}]}
    run = tmp_path / "containers" / "run" / "1a2b3c4d"
    apply(plan(params)[0])
    if len(cpus) < 2:
        assert not list(run.glob("*.cpus"))
        return
    assert (run / "datapath.cpus").read_text() == f"{cpus[-1]}\n"
    assert (run / "nodes.cpus").read_text() == f"{cpu_list(cpus[:-1])}\n"
    assert plan(params)[0] == []
    steps, before, after = plan({**params, "datapath_cpus": "none"})
    assert [what for what, _action, _arg in steps] == [f"remove {run / n}" for n in ("datapath.cpus", "nodes.cpus")]
    assert after[str(run / "nodes.cpus")] == "" and before[str(run / "nodes.cpus")]
    apply(steps)
    assert not list(run.glob("*.cpus"))
    with pytest.raises(ValueError, match="leaves the nodes no CPU"):
        plan({**params, "datapath_cpus": cpu_list(cpus)})


class _Task:
    def __init__(self, install):
        self.args = {"install_missing": install}


def _install_run(install, missing, apt_result):
    """What hv_experiment's action makes of a module result with MISSING packages; the apt calls it made."""
    from ansible_collections.containerize.deploy.plugins.action.hv_experiment import ActionModule

    action = ActionModule.__new__(ActionModule)  # only _install_missing is run: no task executor needed
    action._task = _Task(install)
    calls = []
    action._execute_module = lambda **kwargs: calls.append(kwargs) or dict(apt_result)
    result = {"changed": False, "missing_packages": missing}
    action._install_missing(result, {})
    return result, calls


def test_missing_packages_are_installed_with_apt_in_the_same_task():
    result, calls = _install_run(True, ["vde2"], {"changed": True})
    assert [c["module_name"] for c in calls] == ["ansible.builtin.apt"]
    assert calls[0]["module_args"]["name"] == ["vde2"] and calls[0]["module_args"]["state"] == "present"
    assert result["changed"] and result["installed_packages"] == ["vde2"]
    # nothing missing, or install_missing false (hv_install_packages: false): no apt call
    assert _install_run(True, [], {})[1] == [] and _install_run(False, ["vde2"], {})[1] == []


def test_a_failed_install_fails_the_task_naming_the_packages():
    result, _calls = _install_run(True, ["vde2", "procps"], {"failed": True, "msg": "no mirror"})
    assert result["failed"] and result["msg"] == "installing the missing packages vde2, procps: no mirror"
