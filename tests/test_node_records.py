"""The records of a pnode's process nodes (module_utils node_record): one file per pnode, and the
per-node files of an earlier version read and replaced."""

from __future__ import annotations

import json
import os

from ansible_collections.containerize.deploy.plugins.module_utils.node_record import RECORD, NodeRecords

TBF = {"eth0": {"burst": 125000, "rate": 100000000}}


def test_records_are_one_file_saved_only_when_changed(tmp_path):
    records = NodeRecords(str(tmp_path))
    records.set("a", "a.exp.proj", {})
    records.set("b", "b.exp.proj", TBF)
    records.save()
    assert json.loads((tmp_path / RECORD).read_text()) == {
        "a": {"namespace": "a.exp.proj", "tc": {}}, "b": {"namespace": "b.exp.proj", "tc": TBF}}
    again = NodeRecords(str(tmp_path))
    assert again.namespaces() == {"a": "a.exp.proj", "b": "b.exp.proj"} and again.tc("b") == TBF
    inode = os.stat(tmp_path / RECORD).st_ino
    again.set("a", "a.exp.proj")  # as recorded: nothing to write
    again.save()
    assert os.stat(tmp_path / RECORD).st_ino == inode
    again.forget(["a", "b"])
    again.save()
    assert not (tmp_path / RECORD).exists()  # nothing left to record: no file


def test_an_earlier_versions_files_are_read_then_replaced(tmp_path):
    (tmp_path / "a.ns").write_text("a.exp.proj\n")
    (tmp_path / "b.ns").write_text("b.exp.proj\n" + json.dumps(TBF) + "\n")  # tbf as a second line
    (tmp_path / "c.ns").write_text("c.exp.proj\n")
    (tmp_path / "c.tc.json").write_text(json.dumps(TBF))  # tbf in its own file, older still
    (tmp_path / "lan-bridges.json").write_text("{}")
    records = NodeRecords(str(tmp_path), sorted(os.listdir(tmp_path)))
    assert records.namespaces() == {"a": "a.exp.proj", "b": "b.exp.proj", "c": "c.exp.proj"}
    assert records.tc("a") == {} and records.tc("b") == TBF and records.tc("c") == TBF
    records.save()
    assert sorted(os.listdir(tmp_path)) == ["lan-bridges.json", RECORD]
    assert NodeRecords(str(tmp_path)).tc("c") == TBF
