"""The command line: the only layer that prints or exits.

  containerize [options] PROJECT[/GROUP] EXPERIMENT TOPOLOGY   compile an experiment directory
  containerize swapin|swapout EXPDIR [ansible-playbook options] realize the experiment, or remove it
  containerize exec EXPDIR NODE -- CMD [ARGS...]               run a command inside a node
"""

from __future__ import annotations

import argparse
import gc
import importlib
import re
import stat
import sys
import time
import traceback
from pathlib import Path

from . import __version__
from .config import as_list, load_site_config
from .errors import ContainerizeError, ErrorList, shown
from .model import KINDS
from .options import Options
from .planners.names import valid_name, valid_user, valid_word
from .units import parse_disk_size

EXIT_USAGE = 2
MAX_TOPOLOGY_BYTES = 256 << 20  # a 100,000-node TopDL file is about 30 MB
_WHOLE = re.compile(r"[0-9]{1,18}")  # ASCII digits only: int() would also take '٣' and '1_0'

# `containerize NAME ARGS...`: NAME -> "module:function(argv) -> exit status". Anything else compiles.
SUBCOMMANDS = {
    "exec": ".commands.exec:run_exec",
    "console": ".commands.exec:run_console",
    "shell": ".commands.exec:run_console",
    "info": ".commands.exec:run_info",
    "status": ".commands.status:run_status",
    "status-server": ".commands.status:run_server",
    "list": ".commands.listing:run_list",
    "image": ".commands.image:run_image",
    "image-build": ".commands.image_build:run_image_build",
    "ssh": ".commands.ssh:run_ssh",
    "ssh-proxy": ".commands.ssh:run_proxy",
    "ssh-setup": ".commands.ssh:run_setup",
    "shape": ".commands.shape:run_shape",
    "annotate": ".commands.annotate:run_annotate",
    "swapin": ".commands.playbooks:run_swapin",
    "swapout": ".commands.playbooks:run_swapout",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line with exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse API
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(EXIT_USAGE)


class _JoinAction(argparse.Action):
    """A per-pass option may be repeated, as DETER allowed: the values add up."""

    def __init__(self, *args, sep: str = ",", **kwargs):
        self.sep = sep
        super().__init__(*args, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        previous = getattr(namespace, self.dest) or ""
        setattr(namespace, self.dest, f"{previous}{self.sep}{values}" if previous else values)


def _pass_number(text: str, option: str, item: str, expected: str) -> int:
    if not _WHOLE.fullmatch(text.strip()):
        raise ContainerizeError(f"{option} {shown(item)}: expected {expected} (passes are numbered from 0)")
    return int(text)


def _pass_table(text: str, option: str) -> dict[int, int]:
    expected = "PASS:NUMBER[,PASS:NUMBER...]"
    table: dict[int, int] = {}
    for item in as_list(text):
        pass_no, _, value = item.partition(":")
        number = _pass_number(pass_no, option, item, expected)
        if not re.fullmatch(r"-?[0-9]{1,100}", value.strip()):
            raise ContainerizeError(f"{option} {shown(item)}: expected {expected}")
        if number in table and table[number] != int(value):
            raise ContainerizeError(f"{option} gives pass {number} two values ({table[number]} and {int(value)}); "
                                    "give each pass once")
        table[number] = int(value)
    return table


def _pass_pnodes(text: str) -> dict[int, list[str]]:
    expected = "PASS:TYPE[,TYPE];PASS:TYPE"
    table: dict[int, list[str]] = {}
    for item in (part.strip() for part in text.split(";") if part.strip()):
        pass_no, _, types = item.partition(":")
        number = _pass_number(pass_no, "--pass-pnodes", item, expected)
        found = as_list(types)
        if not found:
            raise ContainerizeError(f"--pass-pnodes {shown(item)}: no pnode type given for pass {number}")
        _check_words(found, "--pass-pnodes", "pnode type")
        if number in table and table[number] != found:
            raise ContainerizeError(f"--pass-pnodes gives pass {number} two type lists ({','.join(table[number])} "
                                    f"and {','.join(found)}); give each pass once")
        table[number] = found
    return table


def _check_words(values: list[str], option: str, what: str) -> None:
    for value in values:
        if not valid_word(value):
            raise ContainerizeError(f"{option}: {shown(value)} is not a {what}; use letters, digits and . _ - + : /")


def _whole_number(text: str) -> int:
    """argparse type of --packing and --size: a whole number written in ASCII digits."""
    if not re.fullmatch(r"[-+]?[0-9]+", text.strip(), re.ASCII):
        raise argparse.ArgumentTypeError(f"invalid int value: {shown(text)}")
    if len(text.strip()) > 100:
        raise argparse.ArgumentTypeError(f"{shown(text)} is too large a number")
    return int(text)


def compile_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="containerize",
        description="Compile an ns2 (.tcl/.ns) or TopDL topology into an experiment directory whose "
                    "Ansible inventory `ansible-playbook -i EXPDIR/inventory playbooks/swapin.yml` realizes. "
                    "Other commands (each with its own --help): swapin, swapout, exec, console/shell, info, status, "
                    "status-server, list, image, shape, annotate; see docs/operations.md.",
    )
    parser.add_argument("project", metavar="PROJECT[/GROUP]", help="project (and group) owning the experiment")
    parser.add_argument("experiment", metavar="EXPERIMENT", help="experiment name")
    parser.add_argument("topology", metavar="TOPOLOGY", help="topology file: .tcl/.ns is ns2, anything else TopDL")
    parser.add_argument("--out", metavar="DIR", help="experiment directory (default experiments/PROJECT/EXPERIMENT)")
    parser.add_argument("--force", action="store_true", help="replace an existing experiment directory atomically")
    parser.add_argument("--config", metavar="FILE", help="site configuration (ConfigParser, DETER site.conf keys)")
    parser.add_argument("--default-container", metavar="KIND", default="qemu", choices=KINDS,
                        help=f"kind for nodes that do not name one: {', '.join(KINDS)} (default qemu)")
    part = parser.add_argument_group("partitioning")
    part.add_argument("--force-partition", action="store_true",
                      help="partition even when nodes carry containers:partition")
    part.add_argument("--packing", type=_whole_number, default=10, metavar="N", help="nodes per pnode (default 10)")
    part.add_argument("--size", type=_whole_number, metavar="N",
                      help="number of pnodes to pack onto (overrides --packing)")
    part.add_argument("--pass-pack", action=_JoinAction, sep=",", default="",
                      metavar="P:N[,P:N]", help="packing per partition pass")
    part.add_argument("--pass-size", action=_JoinAction, sep=",", default="",
                      metavar="P:N[,P:N]", help="number of pnodes per partition pass")
    part.add_argument("--pnode-types", default="pc", metavar="T1[,T2]", help="hardware types for pnodes")
    part.add_argument("--pass-pnodes", action=_JoinAction, sep=";", default="",
                      metavar="'P:T,T;P:T'", help="pnode types per pass")
    part.add_argument("--pnode-hosts", metavar="HOST[,HOST]",
                      help="your own machines as the pnodes (over SSH): pnode-NNNN is HOST N; as many pnodes as "
                           "hosts unless --packing or --size asks for fewer")
    part.add_argument("--pnode-hosts-file", metavar="FILE",
                      help="like --pnode-hosts, from a YAML list of HOST or {host: HOST, vars: {ANSIBLE_VAR: ...}}")
    part.add_argument("--nodes-only", action="store_true",
                      help="partition by node count alone, ignoring links (file order)")
    part.add_argument("--pass-nodes-only", action=_JoinAction, sep=",", default="",
                      metavar="P[,P]", help="--nodes-only for these passes")
    parser.add_argument("--routing", choices=("static", "manual", "none"),
                        help="routes: static (computed, rtproto Static), manual (the file's add-route only) or "
                             "none (default: what the file says; Static for a TopDL file that says nothing)")
    shaping = parser.add_argument_group("link shaping")
    shaping.add_argument("--end-node-shaping", dest="end_node_shaping", action="store_true", default=None,
                         help="shape with tc on the nodes' own interfaces")
    shaping.add_argument("--vde-switch-shaping", dest="end_node_shaping", action="store_false",
                         help="shape with VDE wirefilters beside the switches (default for qemu and process)")
    kinds = parser.add_argument_group("container kinds")
    kinds.add_argument("--openvz-diskspace", metavar="SIZE", help="disk space of openvz containers (e.g. 2G)")
    kinds.add_argument("--openvz-template", metavar="NAME", help="default openvz template")
    kinds.add_argument("--openvz-template-dir", metavar="DIR[,DIR]", default="",
                       help="openvz template directories, searched in order")
    kinds.add_argument("--qemu-prefer-users", metavar="USER[,USER]", default="",
                       help="accounts to create in qemu nodes")
    out = parser.add_argument_group("output")
    out.add_argument("--image", dest="image", action="store_true", default=True,
                     help="draw visualization.png (default)")
    out.add_argument("--no-image", dest="image", action="store_false", help="do not draw visualization.png")
    out.add_argument("--debug", action="store_true", help="show tracebacks of internal errors and timings")
    out.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory when compiling fails")
    parser.add_argument("--version", action="version", version=f"containerize {__version__}")
    return parser


def _pnode_hosts(args, argv_given) -> list[dict]:
    from .pnode_hosts import hosts_from_file, hosts_from_list

    if args.pnode_hosts is not None and args.pnode_hosts_file is not None:
        raise ContainerizeError("--pnode-hosts and --pnode-hosts-file: give one of them")
    if args.pnode_hosts is not None:
        return hosts_from_list(args.pnode_hosts)
    if args.pnode_hosts_file is not None:
        return hosts_from_file(args.pnode_hosts_file)
    return []


def _options(args, argv: list[str] = ()) -> Options:
    def argv_given(option: str) -> bool:
        return any(a == option or a.startswith(option + "=") for a in argv)

    project, _, group = args.project.partition("/")
    for label, value in (("project", project), ("group", group or project), ("experiment", args.experiment)):
        if not valid_name(value):
            raise ContainerizeError(f"invalid {label} name {shown(value)}; use letters, digits and '-'")
    if args.openvz_diskspace is not None:
        try:
            parse_disk_size(args.openvz_diskspace)
        except ValueError as exc:
            raise ContainerizeError(f"--openvz-diskspace {exc}") from None
    if args.openvz_template is not None and not valid_word(args.openvz_template, slash=False):
        raise ContainerizeError(f"--openvz-template {shown(args.openvz_template)}: expected a template name such "
                                "as debian-12 (letters, digits and . _ - +, no '/')")
    template_dirs = as_list(args.openvz_template_dir)
    for directory in template_dirs:
        if not directory.startswith("/") or not directory.isprintable():
            raise ContainerizeError(f"--openvz-template-dir {shown(directory)}: expected absolute directories "
                                    "(/share/..., /proj/...)")
    users = as_list(args.qemu_prefer_users)
    for user in users:
        if not valid_user(user):
            raise ContainerizeError(f"--qemu-prefer-users {shown(user)}: not a user name (letters, digits, "
                                    "'_', '-' and '.', at most 32 characters)")
    pnode_types = as_list(args.pnode_types)
    _check_words(pnode_types, "--pnode-types", "pnode type")
    pass_nodes_only = as_list(args.pass_nodes_only)
    if not all(_WHOLE.fullmatch(p) for p in pass_nodes_only):
        raise ContainerizeError(f"--pass-nodes-only {shown(args.pass_nodes_only)}: expected pass numbers P[,P] "
                                "(passes are numbered from 0)")
    if args.out is not None and not args.out.strip():
        raise ContainerizeError("--out '': expected the experiment directory to write")
    site = load_site_config(args.config)
    pnode_hosts = _pnode_hosts(args, argv_given)
    size = args.size
    if pnode_hosts:
        site["target"] = "testbed"
        if size is None and not argv_given("--packing"):
            size = len(pnode_hosts)
        if size is not None and size > len(pnode_hosts):
            raise ContainerizeError(f"--size {size} asks for more pnodes than the {len(pnode_hosts)} hosts given")
    return Options(
        project=project, group=group or project, experiment=args.experiment,
        default_container=args.default_container, force_partition=args.force_partition,
        packing=args.packing, size=size, pnode_hosts=pnode_hosts,
        pass_pack=_pass_table(args.pass_pack, "--pass-pack"), pass_size=_pass_table(args.pass_size, "--pass-size"),
        pnode_types=pnode_types or ["pc"], pass_pnodes=_pass_pnodes(args.pass_pnodes),
        nodes_only=args.nodes_only,
        pass_nodes_only={int(p) for p in pass_nodes_only},
        end_node_shaping=args.end_node_shaping, openvz_diskspace=args.openvz_diskspace,
        openvz_template=args.openvz_template, openvz_template_dir=template_dirs,
        qemu_prefer_users=users, site=site, routing=args.routing,
    )


def _check_out(out: Path) -> None:
    """The experiment directory must be creatable: no file where a parent directory should be."""
    for parent in [out, *out.parents]:
        if parent.exists() or parent.is_symlink():
            if parent != out and not parent.is_dir():
                raise ContainerizeError(f"--out {out}: {parent} is a file, not a directory")
            return


def _check_replace(out: Path, protected: list[tuple[str, Path]]) -> None:
    """--force replaces OUT with everything in it: refuse when that would delete the input or the place the
    user stands in."""
    if not out.exists():
        return
    target = out.resolve()
    if target == Path(target.anchor):
        raise ContainerizeError(f"--out {out}: --force would replace the root directory; choose an experiment "
                                "directory")
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise ContainerizeError(f"--out {out} is the current directory or holds it; --force would replace it "
                                "with the experiment directory; choose another --out")
    for what, path in protected:
        resolved = path.resolve()
        if target == resolved:
            raise ContainerizeError(f"--out {out} is the {what} file; --force would delete it; choose another --out")
        if target in resolved.parents:
            raise ContainerizeError(f"--out {out} holds the {what} {path}; --force would delete it; choose "
                                    "another --out")


def read_topology(path: Path):
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ContainerizeError("no such topology file", str(path)) from None
    except OSError as exc:
        raise ContainerizeError(f"cannot read the topology: {exc.strerror or exc}", str(path)) from None
    if stat.S_ISDIR(info.st_mode):
        raise ContainerizeError("is a directory, not a topology file", str(path))
    if not stat.S_ISREG(info.st_mode):
        raise ContainerizeError("is not a regular file (a device, pipe or socket); give a topology file", str(path))
    if info.st_size > MAX_TOPOLOGY_BYTES:
        raise ContainerizeError(f"the file has {info.st_size >> 20} MiB; a topology may have at most "
                                f"{MAX_TOPOLOGY_BYTES >> 20} MiB", str(path))
    if path.suffix in (".tcl", ".ns"):
        from .readers.ns2 import read_ns2

        return read_ns2(str(path))
    from .readers.topdl import read_topdl

    return read_topdl(str(path))


def run_compile(argv: list[str]) -> int:
    args = compile_parser().parse_args(argv)
    started = time.monotonic()
    collecting = gc.isenabled()
    gc.disable()  # the model is acyclic; collecting while 100,000 nodes are built costs a third of the time
    try:
        options = _options(args, argv)
        topo_path = Path(args.topology)
        out = Path(args.out) if args.out else Path("experiments") / options.project / options.experiment
        _check_out(out)
        if args.force:
            _check_replace(out, [("topology", topo_path)] + ([("site configuration", Path(args.config))]
                                                           if args.config else []))
        topo = read_topology(topo_path)
        from .compiler import check, plan
        from .output import write_atomically
        from .writers.experiment import write_experiment
        from .writers.topdl import topdl_bytes

        check(topo)  # the cheap checks first: a 100,000-node input fails in seconds, not after planning
        input_topdl = topdl_bytes(topo, annotations=False)  # converted.xml: before the planners fill anything in
        exp = plan(topo, options, checked=True)
        if options.pnode_hosts and len(exp.partitioning.assignment) > len(options.pnode_hosts):
            raise ContainerizeError(f"the experiment needs {len(exp.partitioning.assignment)} pnodes (qemu and openvz "
                                    f"nodes never share one, an embedded_pnode node takes one of its own) but "
                                    f"{len(options.pnode_hosts)} hosts are given; give more hosts or a larger "
                                    "--packing")
        created = [p for p in [out.absolute(), *out.absolute().parents] if not p.exists()]  # deepest first
        try:
            write_atomically(out, args.force, args.keep_tmp,
                             lambda tmp: write_experiment(exp, tmp, topo_path, input_topdl, image=args.image))
        except BaseException:
            for directory in created:  # nothing half-written: not even the parents made for it
                if directory.exists():
                    try:
                        directory.rmdir()
                    except OSError:  # not empty (--keep-tmp) or not ours after all
                        break
            raise
    except ErrorList as exc:
        for line in exc.lines():
            print(line, file=sys.stderr)
        return EXIT_USAGE
    except ContainerizeError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    finally:
        if collecting:
            gc.enable()
    for warning in topo.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    nodes, pnodes = len(topo.nodes), len(exp.partitioning.assignment)
    print(f"{out}: {nodes} nodes on {pnodes} pnode{'s' * (pnodes != 1)}, "
          f"{len(topo.substrates)} links/LANs, {exp.partitioning.cut_links} crossing pnodes")
    if args.debug:
        print(f"compiled in {time.monotonic() - started:.2f} s", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        if argv and argv[0] in SUBCOMMANDS:
            module_name, function = SUBCOMMANDS[argv[0]].split(":")
            module = importlib.import_module(module_name, __package__)
            return getattr(module, function)(argv[1:])
        return run_compile(argv)
    except KeyboardInterrupt:
        return 130
    except ContainerizeError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # an internal bug: one line unless --debug
        if debug:
            traceback.print_exc()
        else:
            print(f"containerize: internal error: {exc!r} (run with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
