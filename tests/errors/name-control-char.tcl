set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set "b\x01c" [$ns node]
$ns run
