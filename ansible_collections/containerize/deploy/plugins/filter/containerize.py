# Copyright: the containerize authors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Small pure filters for the roles and templates of containerize.deploy (tests/test_filters.py)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.containerize.deploy.plugins.module_utils.hosts import hosts_errors, render_hosts


def hosts_text(hosts):
    """A node's whole /etc/hosts from the compiler's list of {address, names} (or text): `containerize_hosts | containerize.deploy.hosts_text`."""  # noqa: E501
    errors = hosts_errors(hosts)
    if errors:
        raise AnsibleFilterError("hosts_text: " + "; ".join(errors[:3]))
    return render_hosts(hosts)


def nodes_of_kind(nodes, kind):
    """The nodes of one kind, in plan order: `containerize_nodes | containerize.deploy.nodes_of_kind('qemu')`."""
    if not isinstance(nodes, list):
        raise AnsibleFilterError(f"nodes_of_kind: expected the list of nodes, got {type(nodes).__name__}")
    return [node for node in nodes if isinstance(node, dict) and node.get("kind") == kind]


def site_value(site, key, default=""):
    """A site.conf key of `containerize_site`, or DEFAULT when it is missing or empty."""
    value = (site or {}).get(key)
    return default if value in (None, "") else value


def installed_packages(lines):
    """Installed package names from `dpkg-query --show --showformat='${Package} ${db:Status-Abbrev}\\n'` lines."""
    names = []
    for line in lines or []:
        parts = str(line).split()
        if len(parts) >= 2 and parts[1] == "ii":
            names.append(parts[0])
    return names


class FilterModule:
    """containerize.deploy filters."""

    def filters(self):
        return {
            "hosts_text": hosts_text,
            "nodes_of_kind": nodes_of_kind,
            "site_value": site_value,
            "installed_packages": installed_packages,
        }
