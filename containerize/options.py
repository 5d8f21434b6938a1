"""What the command line decided, as one value the planners read."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Options:
    project: str
    group: str
    experiment: str
    default_container: str = "qemu"
    force_partition: bool = False
    packing: int = 10
    size: int | None = None
    pass_pack: dict[int, int] = field(default_factory=dict)
    pass_size: dict[int, int] = field(default_factory=dict)
    pnode_types: list[str] = field(default_factory=lambda: ["pc"])
    pass_pnodes: dict[int, list[str]] = field(default_factory=dict)
    nodes_only: bool = False
    pass_nodes_only: set[int] = field(default_factory=set)
    end_node_shaping: bool | None = None  # None: site switch_shaping decides
    openvz_diskspace: str | None = None
    openvz_template: str | None = None
    openvz_template_dir: list[str] = field(default_factory=list)
    qemu_prefer_users: list[str] = field(default_factory=list)
    site: dict[str, str] = field(default_factory=dict)
    # --pnode-hosts/--pnode-hosts-file: [{"host": HOST, "vars": {...}}], pnode-NNNN on host N (target testbed)
    pnode_hosts: list[dict] = field(default_factory=list)
    routing: str | None = None  # --routing static|manual|none; None: what the file says (Static for silent TopDL)
