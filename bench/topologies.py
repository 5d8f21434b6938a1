"""Generated benchmark topologies (ns2 text)."""

from __future__ import annotations


def lan_tree(hosts: int, lan_size: int = 50, bandwidth: str = "100Mb", delay: str = "1ms") -> str:
    """`hosts` hosts in LANs of `lan_size`, each LAN behind its own router; routers form a binary tree."""
    lans = max(1, (hosts + lan_size - 1) // lan_size)
    lines = ["set ns [new Simulator]", "source tb_compat.tcl"]
    lines.append(f"for {{set i 0}} {{$i < {lans}}} {{incr i}} {{ set r($i) [$ns node] }}")
    lines.append(f"for {{set i 1}} {{$i < {lans}}} {{incr i}} {{")
    lines.append(f"  set up($i) [$ns duplex-link $r($i) $r([expr {{($i - 1) / 2}}]) 1Gb {delay} DropTail] }}")
    lines.append(f"for {{set l 0}} {{$l < {lans}}} {{incr l}} {{")
    lines.append("  set members $r($l)")
    lines.append(f"  for {{set h 0}} {{$h < {lan_size}}} {{incr h}} {{")
    lines.append(f"    if {{$l * {lan_size} + $h >= {hosts}}} break")
    lines.append("    set n($l,$h) [$ns node]")
    lines.append("    lappend members $n($l,$h) }")
    lines.append(f"  set lan($l) [$ns make-lan $members {bandwidth} {delay}] }}")
    lines.append("$ns rtproto Static")
    lines.append("$ns run")
    return "\n".join(lines) + "\n"


def one_lan(hosts: int, bandwidth: str = "100Mb", delay: str = "0ms") -> str:
    """`hosts` nodes on a single LAN."""
    return (
        "set ns [new Simulator]\nsource tb_compat.tcl\n"
        f"for {{set i 0}} {{$i < {hosts}}} {{incr i}} {{ set n($i) [$ns node]; lappend all $n($i) }}\n"
        f"set lan0 [$ns make-lan $all {bandwidth} {delay}]\n$ns rtproto Static\n$ns run\n"
    )
