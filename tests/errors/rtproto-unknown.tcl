set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
$ns rtproto OSPF
$ns run
