set ns [new Simulator]
source tb_compat.tcl
set n(1) [$ns node]
set n-1 [$ns node]
$ns run
