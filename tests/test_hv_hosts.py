"""hv_experiment and a pnode's hosts file: made when the pnode has none, removed again by swap-out.

The module's own function runs on a hosts file in a temporary directory (the real /etc/hosts of
this machine is not touched); tests/test_own_hosts.py checks the same on real hosts without one.
"""

from __future__ import annotations

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
