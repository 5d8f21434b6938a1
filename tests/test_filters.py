"""The collection's filters (plugins/filter/containerize.py), as roles and templates use them."""

from __future__ import annotations

import subprocess
import sys

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.containerize.deploy.plugins.filter.containerize import (
    FilterModule,
    hosts_text,
    installed_packages,
    nodes_of_kind,
    site_value,
)
from tests.e2e import ENV, REPO

HOSTS = [{"address": "10.0.0.1", "names": ["a", "a-lan0"]}, {"address": "10.0.0.2", "names": ["b"]}]


def test_hosts_text_has_localhost_then_the_experiment():
    assert hosts_text(HOSTS).splitlines() == [
        "127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback", "10.0.0.1 a a-lan0", "10.0.0.2 b"]


def test_hosts_text_takes_text_as_it_is():
    assert hosts_text("10.0.0.9 z") == "10.0.0.9 z\n"


def test_hosts_text_refuses_a_malformed_entry():
    with pytest.raises(AnsibleFilterError, match=r"hosts\[0\] needs an address"):
        hosts_text([{"names": ["a"]}])


def test_nodes_of_kind_keeps_plan_order():
    nodes = [{"name": "q2", "kind": "qemu"}, {"name": "p", "kind": "process"}, {"name": "q1", "kind": "qemu"}]
    assert [g["name"] for g in nodes_of_kind(nodes, "qemu")] == ["q2", "q1"]
    assert nodes_of_kind([], "openvz") == []
    with pytest.raises(AnsibleFilterError, match="list of nodes"):
        nodes_of_kind({"name": "q"}, "qemu")


def test_site_value_falls_back_on_missing_or_empty():
    site = {"qemu_host_hw": "", "qemu_url": "/images/root.tar.gz"}
    assert site_value(site, "qemu_url") == "/images/root.tar.gz"
    assert site_value(site, "qemu_host_hw", "pc") == "pc"
    assert site_value(None, "anything", 7) == 7


def test_installed_packages_reads_dpkg_query_lines():
    lines = ["vde2 ii ", "qemu-utils un ", "iproute2 ii", "", "broken"]
    assert installed_packages(lines) == ["vde2", "iproute2"]


def test_every_filter_is_registered():
    assert set(FilterModule().filters()) == {"hosts_text", "nodes_of_kind", "site_value", "installed_packages"}


def test_filters_work_in_a_template(tmp_path):
    """The filters resolve by their collection names in a real playbook run."""
    book = tmp_path / "book.yml"
    book.write_text("""---
- name: Use the filters
  hosts: localhost
  gather_facts: false
  vars:
    nodes: [{name: q, kind: qemu}, {name: p, kind: process}]
  tasks:
    - name: Show them
      ansible.builtin.debug:
        msg: "{{ nodes | containerize.deploy.nodes_of_kind('qemu') | map(attribute='name') | join(',') }}|{{
                 {'qemu_url': ''} | containerize.deploy.site_value('qemu_url', 'none') }}"
""")
    proc = subprocess.run([sys.executable, "-m", "ansible", "playbook", "-i", "localhost,", "-c", "local", str(book)],
                          capture_output=True, text=True, env=ENV, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "q|none" in proc.stdout
