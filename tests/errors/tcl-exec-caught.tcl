set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
catch {exec touch /tmp/containerize-pwned}
$ns run
