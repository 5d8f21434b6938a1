"""Read a DETER ns2/Tcl topology file into the Topology model.

The file is run by a real Tcl 8.6 interpreter (tkinter), in a *safe* child interpreter: it cannot
run programs, open files or sockets, load code or source anything but ``tb_compat.tcl`` (which is
built in, never read). ``after``, ``vwait`` and ``interp`` are hidden too, recursion is limited and
the whole evaluation has a time limit, so ``while 1 {}`` ends with an error. Memory use is not
limited.

The DETER commands (``new Simulator``, ``$ns ...``, ``tb-*``, methods of nodes, links and LANs)
are aliases into the reader (its handlers are in ns2_commands.py); ``tb_compat.tcl`` next to it
holds the small Tcl part. Objects are handles (``_o12``) dispatched through ``unknown``. What ends
up where:

- ``$ns node`` -> Node; ``duplex-link`` -> Substrate(kind="link", bandwidth, delay one way,
  attributes["queue"] = queue type); ``make-lan`` -> Substrate(kind="lan"). Each member gets an
  Interface (``inf000``, ``inf001``... per node, in creation order). ``line`` is always the line of
  the statement that created the object.
- Names: an object takes the name of the first global variable that holds it (``n(3)`` -> ``n-3``
  as DETER does; also ``host(1,2)`` -> ``host-1-2`` and ``my_node`` -> ``my-node``); a name may then
  stand for the object (``"fozzie"``). A variable reused for a second object keeps naming the
  first; objects never held by a global variable are named ``node-N``, ``link-N`` or ``lan-N``
  (N = creation index among objects of that kind). Other invalid names and duplicates are errors.
- ``"... $(hostname)"`` (shell substitution, common in start commands) stays literal instead of
  being a Tcl error.
- ``tb-set-ip`` -> Interface.ip of the node's only interface (checked once the file has run, so it
  may come before the link); ``tb-set-ip-link|lan|interface`` -> that Interface.ip;
  ``tb-set-netmask`` -> Substrate.fixed_netmask.
- ``tb-set-link-loss`` (link, or two nodes) and ``tb-set-lan-loss`` -> Substrate.loss (node to
  node); ``tb-set-node-lan-delay|bandwidth|loss|params`` -> Interface overrides, stored as given
  (node to LAN; DETER halves a LAN's delay per hop, a planner's business);
  ``tb-set-link-simplex-params`` -> Substrate.simplex[from node name].
- ``tb-set-node-os`` -> Node.os, ``tb-set-hardware`` -> Node.hardware (a vtype name stays as is),
  ``tb-make-{soft,hard,weighted}-vtype`` -> Topology.vtypes, ``tb-set-node-startcmd`` ->
  Node.startcmd, ``tb-add-node-attribute`` -> Node.attributes, ``$ns rtproto`` -> Topology.rtproto.
- ``$node add-route DST NEXTHOP`` -> Node.manual_routes as Route(dest=DST's node name, or
  ``substrate:NAME`` for a link or LAN, gateway=NEXTHOP's node name). Routes planners turn these
  into addresses.
- Agents, traffic generators, events, queue tweaks and testbed-only tb-* commands are skipped with
  one ``FILE:LINE: skipped ...`` warning per kind in Topology.warnings.

Errors are ContainerizeError(message, source=path, line=N), N being the line of the file where
it happened (inside procs and loops too). They cannot be caught by the file's own ``catch``.
The file must be UTF-8 text without NUL bytes, and no value may hold a control character (but tab
and newline) that the output files could not carry.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from ..errors import ContainerizeError, shown
from ..model import Interface, Node, Route, Substrate, Topology
from ..units import parse_bandwidth, parse_delay
from .ns2_commands import HIDDEN, _Commands
from .ns2_objects import _arity, _Iface, _LanLink, _Node, _Obj, _Sub, _text, _value, _wrong_args
from .ns2_trace import _ErrorTrace

try:
    import tkinter
except ImportError:  # a Python without Tk: said so when an ns2 file is read
    tkinter = None

COMPAT = Path(__file__).with_name("tb_compat.tcl")
CHILD = "topology"  # the safe interpreter, as the master names it
WHERE = "ns2where"  # master command running ::tb::where in the child
RECURSION_LIMIT = 1000
# Characters no output file can hold (XML 1.0 forbids them; YAML and Tcl would garble them): control
# characters but tab, newline and carriage return, lone surrogates and U+FFFE/U+FFFF.
UNWRITABLE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
INTERNAL = frozenset({"::tb::name", "::tb::procline", "puts"})  # arguments checked where used, or ignored


def read_ns2(path, *, time_limit: float = 30.0) -> Topology:
    """Evaluate the ns2 file ``path`` and return its Topology; raise ContainerizeError on bad input.

    ``time_limit`` (wall-clock seconds) bounds the evaluation, so an endless loop is an error; it is generous
    (a 100,000-node file needs about 4 s of CPU) so that a busy machine does not fail a large topology.
    """
    return _Reader(str(path), time_limit).read()


class _Reader(_Commands):
    def __init__(self, source: str, time_limit: float):
        self.source = source
        self.file = os.path.realpath(source)  # as Tcl records it (symlinks resolved)
        self.time_limit = time_limit
        self.topo = Topology(source=source, fmt="ns2")
        self.objs: dict[str, _Obj] = {}
        self.names: dict[str, _Obj] = {}
        self.counts: dict[str, int] = {}
        self.nodes: list[_Node] = []
        self.subs: list[_Sub] = []
        self.lanlinks: dict[tuple, _LanLink] = {}
        self.warned: set[str] = set()
        self.misspelled: set[str] = set()  # attribute names warned about (near misses of known ones)
        self.procs: dict[str, int] = {}  # proc name -> line where its body starts
        self.error: ContainerizeError | None = None
        self.bug: BaseException | None = None
        self.locating = False  # inside where(): commands the file may have put in its way do nothing
        self.text, self.lines = "", 0
        self.deadline = float("inf")
        self.tcl = None
        self.commands: list[str] = []  # master commands to delete afterwards
        self.void = self._new(_Obj, "void")

    # --- running the file ----------------------------------------------------------------------

    def read(self) -> Topology:
        if tkinter is None:
            raise ContainerizeError("reading ns2 needs Python's tkinter module (Tcl 8.6)", self.source)
        try:
            data = Path(self.source).read_bytes()
        except OSError as exc:
            raise ContainerizeError(f"cannot read the topology: {exc.strerror or exc}", self.source) from None
        self.text = _text(data, self.source)
        self.lines = self.text.count("\n") + 1
        try:
            self._start()
            try:
                self.tcl.call("interp", "invokehidden", CHILD, "-global", "source", "-encoding", "utf-8",
                              self.file)
            except tkinter.TclError as exc:
                if self.bug is None and self.error is None:
                    self._tcl_error(exc)
            if self.bug is not None:
                raise self.bug
            if self.error is not None:
                raise self.error
        finally:
            self._stop()
        return self._finish()

    def _start(self) -> None:
        try:
            self.tcl = tkinter.Tcl().tk  # the bare interpreter: call, createcommand, splitlist, getvar
        except tkinter.TclError as exc:
            raise ContainerizeError(f"cannot start Tcl to read ns2: {exc}", self.source) from None
        call = self.tcl.call
        call("interp", "create", "-safe", CHILD)
        for name in HIDDEN:
            call("interp", "hide", CHILD, name)
        call("interp", "recursionlimit", CHILD, RECURSION_LIMIT)
        call("interp", "alias", "", WHERE, CHILD, "::tb::where")  # one call, no script to parse
        self._register_all()
        call("interp", "eval", CHILD, COMPAT.read_text())
        call("interp", "eval", CHILD, ("::tb::set", "::tb::file", self.file))
        end = self.deadline = time.time() + self.time_limit
        call("interp", "limit", CHILD, "time", "-seconds", int(end), "-milliseconds", int(end % 1 * 1000))

    def _stop(self) -> None:
        """Break the Python <-> Tcl reference cycles so the interpreters are freed."""
        if self.tcl is None:
            return
        try:
            self.tcl.call("interp", "delete", CHILD)
        except tkinter.TclError:
            pass
        for name in self.commands:
            self.tcl.deletecommand(name)
        self.tcl = None

    def _register(self, tcl_name: str, func, usage: str) -> None:
        """Make ``tcl_name`` in the safe interpreter call ``func`` (arguments checked by ``usage``)."""
        low, high = _arity(usage)

        check = tcl_name not in INTERNAL

        def command(*args):
            if self.locating:  # the file replaced ::tb::where with something calling back here
                return ""
            if self.error is not None or self.bug is not None:
                return self._cancel()
            if not low <= len(args) <= high:
                return self._fail(_wrong_args(tcl_name, usage).message)
            if check:
                for arg in args:
                    bad = UNWRITABLE.search(arg)
                    if bad:
                        return self._fail(f"{tcl_name}: {shown(arg)} holds the control character "
                                          f"U+{ord(bad.group()):04X}, which no output file can hold")
            return self._run(func, args)

        master = f"ns2py{len(self.commands)}"
        self.tcl.createcommand(master, command)
        self.commands.append(master)
        self.tcl.call("interp", "alias", CHILD, tcl_name, "", master)

    def _run(self, func, args):
        try:
            result = func(*args)
        except ContainerizeError as exc:
            return self._fail(exc.message)
        except Exception as exc:  # a bug here: re-raised once the interpreter has unwound
            self.bug = exc
            return self._cancel()
        return "" if result is None else result

    def _fail(self, message: str) -> str:
        self.error = ContainerizeError(message, self.source, self.where())
        return self._cancel()

    def _cancel(self) -> str:
        # -unwind: the file's own `catch` cannot swallow it; evaluation stops right away.
        self.tcl.call("interp", "cancel", "-unwind", "--", CHILD, "stopped")
        return ""

    def where(self) -> int | None:
        """Line of the file being executed (innermost, inside procs too)."""
        if self.locating:
            return None
        self.locating = True
        try:
            line = int(self.tcl.call(WHERE))
        except (tkinter.TclError, ValueError):  # e.g. the time limit struck meanwhile
            return None
        finally:
            self.locating = False
        return line if 0 < line <= self.lines else None

    def _skip(self, key: str, what: str) -> None:
        if key not in self.warned:
            self.warned.add(key)
            line = self.where()
            where = f"{self.source}:{line}" if line else self.source
            self.topo.warnings.append(f"{where}: skipped {what}")

    # --- Tcl errors ----------------------------------------------------------------------------

    def _tcl_error(self, exc: tkinter.TclError) -> None:
        message = str(exc)
        try:
            info = self.tcl.getvar("errorInfo")
        except tkinter.TclError:
            info = ""
        line = _ErrorTrace(info, self.file, self.text, self.procs).line()
        # the limit may strike inside a call into the reader, and then Tcl's message is lost
        if message == "time limit exceeded" or time.time() >= self.deadline - 0.01:  # Tcl counts whole ms
            message = f"evaluation stopped after {self.time_limit:g} s (time limit): an endless loop?"
        elif message.startswith("too many nested evaluations"):
            message = f"more than {RECURSION_LIMIT} nested calls: is there an endless recursion?"
        message = "; ".join(part.strip() for part in message.splitlines() if part.strip()) or "Tcl error"
        raise ContainerizeError(message, self.source, line)

    # --- objects -------------------------------------------------------------------------------

    def _new(self, cls, kind: str, **fields):
        index = self.counts.get(kind, 0)
        self.counts[kind] = index + 1
        obj = cls(f"_o{len(self.objs) + 1}", kind, index=index, **fields)
        self.objs[obj.handle] = obj
        return obj

    def _describe(self, obj: _Obj) -> str:
        if obj.kind == "sim":
            return "the Simulator"
        if obj.kind == "void":
            return "an ignored object (agent, application, event...)"
        if obj.name:
            return f"{obj.kind} {obj.name}"
        return f"the {obj.kind} created at line {obj.line}" if obj.line else f"a {obj.kind}"

    def _ref(self, ref: str, kinds: tuple, cmd: str) -> _Obj:
        """An object by handle or by name (``"fozzie"``), of one of ``kinds``."""
        key = ref.strip()
        obj = self.objs.get(key) or self.names.get(key)
        wanted = " or ".join(kinds)
        if obj is None:
            several = self._several(key)
            if several:
                shown_objs = ", ".join(self._describe(o) for o in several[:3]) + (", ..." if len(several) > 3 else "")
                raise ContainerizeError(f"{cmd}: a list of {len(several)} objects ({shown_objs}) given where one "
                                        f"{wanted} is expected")
            raise ContainerizeError(f"{cmd}: {shown(ref)} is not a {wanted}")
        if obj.kind not in kinds:
            if key in self.objs:  # a handle means nothing to the user: say what it is
                raise ContainerizeError(f"{cmd}: {self._describe(obj)} given where a {wanted} is expected")
            raise ContainerizeError(f"{cmd}: {shown(ref)} is {self._describe(obj)}, not a {wanted}")
        return obj

    def _several(self, text: str) -> list[_Obj]:
        """The objects of a Tcl list of two or more handles or names, or [] if it is something else."""
        if not any(c.isspace() for c in text):
            return []
        try:
            items = self.tcl.splitlist(text)
        except tkinter.TclError:
            return []
        found = [self.objs.get(item) or self.names.get(item) for item in items]
        return found if len(found) > 1 and all(found) else []

    def _node(self, ref: str, cmd: str) -> _Node:
        return self._ref(ref, ("node",), cmd)

    def _sub(self, ref: str, cmd: str, kinds=("link", "lan")) -> _Sub:
        return self._ref(ref, kinds, cmd)

    def _iface(self, node: _Node, sub: _Sub, cmd: str) -> _Iface:
        for iface in node.ifaces:
            if iface.sub is sub:
                return iface
        raise ContainerizeError(f"{cmd}: {self._describe(node)} is not on {self._describe(sub)}")

    def _node_and_sub(self, a: str, b: str, cmd: str) -> _Iface:
        """The interface of a node on a LAN or link, given in either order (DETER docs disagree)."""
        first = self._ref(a, ("node", "lan", "link"), cmd)
        if first.kind == "node":
            return self._iface(first, self._sub(b, cmd), cmd)
        return self._iface(self._node(b, cmd), first, cmd)

    def _list(self, text: str, cmd: str) -> list[str]:
        try:
            return list(self.tcl.splitlist(text))
        except tkinter.TclError as exc:
            raise ContainerizeError(f"{cmd}: {text!r} is not a Tcl list ({exc})") from None

    def _link_between(self, a: _Node, b: _Node) -> _Sub | None:
        for iface in a.ifaces:
            sub = iface.sub
            if sub.kind == "link" and {m.node for m in sub.members} == {a, b}:
                return sub
        return None

    def _new_sub(self, kind: str, line: int | None, bw: str, delay: str, cmd: str) -> _Sub:
        sub = self._new(_Sub, kind, line=line, bandwidth=_value(parse_bandwidth, bw, cmd),
                        delay=_value(parse_delay, delay, cmd))
        self.subs.append(sub)
        return sub

    def _attach(self, node: _Node, sub: _Sub, line: int | None) -> None:
        iface = _Iface(node, sub, line)
        node.ifaces.append(iface)
        sub.members.append(iface)

    # --- the model -----------------------------------------------------------------------------

    def _finish(self) -> Topology:
        for obj in [*self.nodes, *self.subs]:
            if obj.name is None:
                name = f"{obj.kind}-{obj.index}"
                extra = 0
                while name in self.names:
                    extra += 1
                    name = f"{obj.kind}-{obj.index}-{extra}"
                obj.name = name
                self.names[name] = obj
        topo = self.topo
        for rec in self.nodes:
            if rec.ip is not None:
                address, line = rec.ip
                if len(rec.ifaces) != 1:
                    raise ContainerizeError(
                        f"tb-set-ip: node {rec.name} has {len(rec.ifaces)} links or LANs; tb-set-ip needs "
                        "exactly one (use tb-set-ip-link, tb-set-ip-lan or tb-set-ip-interface)",
                        self.source, line)
                rec.ifaces[0].ip = address
            node = Node(name=rec.name, attributes=rec.attributes, os=rec.os, hardware=rec.hardware,
                        startcmd=rec.startcmd, line=rec.line)
            for i, iface in enumerate(rec.ifaces):
                node.interfaces.append(Interface(
                    node=rec.name, substrate=iface.sub.name, name=f"inf{i:03d}", ip=iface.ip,
                    bandwidth=iface.bandwidth, delay=iface.delay, loss=iface.loss, line=iface.line))
            for dest, hop in rec.routes:
                target = dest.name if dest.kind == "node" else f"substrate:{dest.name}"
                node.manual_routes.append(Route(dest=target, gateway=hop.name))
            topo.nodes[rec.name] = node
        for rec in self.subs:
            sub = Substrate(name=rec.name, kind=rec.kind, bandwidth=rec.bandwidth, delay=rec.delay,
                            loss=rec.loss, simplex={n.name: s for n, s in rec.simplex.items()},
                            fixed_netmask=rec.netmask, line=rec.line)
            if rec.queue is not None:
                sub.attributes["queue"] = rec.queue
            topo.substrates[rec.name] = sub
        return topo
