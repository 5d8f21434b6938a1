"""A running wirefilter's management socket (C(run_dir/ID.wf.mgmt)): ask it for its values, give it new ones.

Read by experiment_status (the shaping in effect) and link_shaping (live changes), so its reply
format is parsed in one place. Standard library only (see daemons.py).
"""

from __future__ import annotations

import re
import socket

from ansible_collections.containerize.deploy.plugins.module_utils.daemons import Closing

WF_PROMPT = b"VDEwf$ "
WF_NUMBER = r"(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)"
WF_LINE = re.compile(rf"^(Loss|Delay|Bandw)\s+L->R\s+{WF_NUMBER}\+\S*\s+R->L\s+{WF_NUMBER}\+", re.M)
KEYS = {"Delay": "delay", "Bandw": "bandwidth", "Loss": "loss"}


class WirefilterSession(Closing):
    """A conversation with a wirefilter's management socket (the banner is read on connecting)."""

    def __init__(self, path, timeout):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(path)
            self.reply()  # banner
        except OSError:
            self.sock.close()
            raise

    def reply(self):
        data = b""
        while not data.endswith(WF_PROMPT):
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.decode(errors="replace")

    def command(self, text):
        self.sock.sendall(text.encode() + b"\n")
        return self.reply()

    def values(self):
        """{LR: {delay, bandwidth, loss}, RL: {...}} in the wirefilter's units (ms, bytes/s, percent)."""
        return showinfo_values(self.command("showinfo"))

    def close(self):
        self.sock.close()


def showinfo_values(text):
    """{LR: {...}, RL: {...}} from a showinfo reply, in the wirefilter's units."""
    found = {"LR": {}, "RL": {}}
    for key, lr, rl in WF_LINE.findall(text):
        name = KEYS[key]
        convert = (lambda number: int(round(float(number)))) if name == "bandwidth" else float
        found["LR"][name] = convert(lr)
        found["RL"][name] = convert(rl)
    return found


def parse_showinfo(text):
    """{left_to_right: {...}, right_to_left: {...}} from a showinfo reply: delay_ms, bandwidth bit/s
    (None when unlimited) and loss 0..1, as experiment_status reports them."""
    values = {"left_to_right": {}, "right_to_left": {}}
    for key, lr, rl in WF_LINE.findall(text):
        for direction, raw in (("left_to_right", lr), ("right_to_left", rl)):
            number = float(raw)
            if key == "Delay":
                values[direction]["delay_ms"] = number
            elif key == "Bandw":
                values[direction]["bandwidth"] = int(round(number * 8)) if number > 0 else None
            else:
                values[direction]["loss"] = number / 100.0
    return values
