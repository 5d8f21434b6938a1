"""Hosts files: the experiment's names as hosts-file text, and the one editor of a marked block in one.

Every kind of node gets the same /etc/hosts text (render_hosts), and every file the experiment
shares with others (a pnode's /etc/hosts, an embedded node's) carries the experiment's lines between
markers that name it (with_block), replaced in place so other experiments' blocks never move.
Standard library only (see daemons.py).
"""

from __future__ import annotations

LOCALHOST_LINES = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]


def host_lines(hosts):
    """The compiler's list of {address, names} as hosts-file lines (text, one line each)."""
    return "".join(f"{h['address']} {' '.join(h['names'])}\n" for h in hosts)


def render_hosts(hosts):
    """A node's whole /etc/hosts: HOSTS given as text, or as the compiler's list of {address, names}."""
    if isinstance(hosts, str):
        return hosts if hosts.endswith("\n") else hosts + "\n"
    return "\n".join(LOCALHOST_LINES) + "\n" + host_lines(hosts)


def block_markers(exp_name):
    """The (begin, end) marker lines of experiment EXP_NAME's block."""
    return f"# BEGIN containerize experiment {exp_name}", f"# END containerize experiment {exp_name}"


def with_block(text, exp_name, block):
    """TEXT with experiment EXP_NAME's block set to BLOCK (removed when BLOCK is empty).

    The block is replaced where it stands; a new one goes at the end.
    """
    begin, end = block_markers(exp_name)
    lines = (text or "").splitlines()
    wanted = [begin, *block.rstrip("\n").splitlines(), end] if block.strip() else []
    if begin in lines and end in lines[lines.index(begin):]:
        start = lines.index(begin)
        lines[start:lines.index(end, start) + 1] = wanted
    else:
        lines += wanted
    return "\n".join(lines) + "\n" if lines else ""


def hosts_errors(hosts):
    """What is wrong with HOSTS, the compiler's list of {address, names} (or hosts-file text): a list."""
    if isinstance(hosts, str):
        return []
    if not isinstance(hosts, list):
        return [f"hosts must be a list of {{address, names}} or text, not {type(hosts).__name__}"]
    errors = []
    for index, entry in enumerate(hosts):
        if not isinstance(entry, dict) or not isinstance(entry.get("address"), str):
            errors.append(f"hosts[{index}] needs an address (a string)")
        elif not isinstance(entry.get("names"), list) or not all(isinstance(n, str) for n in entry["names"]):
            errors.append(f"hosts[{index}] ({entry['address']}) needs names (a list of strings)")
    return errors


def check_hosts(module):
    """Fail MODULE, naming the first few, when its `hosts` argument has malformed entries."""
    errors = hosts_errors(module.params["hosts"])
    if errors:
        module.fail_json(msg="invalid hosts: " + "; ".join(errors[:5]))
