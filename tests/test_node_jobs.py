"""NodesContext.run_each: nodes found as planned are checked in turn, the rest on worker threads."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from ansible_collections.containerize.deploy.plugins.module_utils.spec import NodesContext


def _context(workers=4):
    ctx = NodesContext.__new__(NodesContext)  # only run_each is exercised: no module options needed
    ctx.module = SimpleNamespace(params={"workers": workers})
    return ctx


def _job(name, threads, changes=(), fail=False):
    def job():
        threads[name] = threading.current_thread()
        if fail:
            raise RuntimeError("broken")
        return SimpleNamespace(name=name, changes=list(changes))
    return name, job


def test_nodes_as_planned_run_in_this_thread():
    threads = {}
    done, errors = _context().run_each([_job(f"n{i}", threads) for i in range(20)])
    assert errors == [] and [node.name for node in done] == [f"n{i}" for i in range(20)]
    assert set(threads.values()) == {threading.current_thread()}


def test_after_the_first_change_the_rest_go_to_workers():
    threads = {}
    jobs = [_job("a", threads), _job("b", threads, changes=["started"])]
    jobs += [_job(f"n{i}", threads) for i in range(10)]
    done, errors = _context().run_each(jobs)
    assert errors == [] and sorted(node.name for node in done) == sorted(name for name, _ in jobs)
    assert threads["a"] is threads["b"] is threading.current_thread()
    assert all(threads[f"n{i}"] is not threading.current_thread() for i in range(10))


def test_a_failing_node_is_reported_and_the_others_still_run():
    threads = {}
    jobs = [_job("a", threads), _job("bad", threads, fail=True), _job("c", threads), _job("d", threads)]
    done, errors = _context(workers=1).run_each(jobs)
    assert errors == ["bad: broken"]
    assert sorted(node.name for node in done) == ["a", "c", "d"]
