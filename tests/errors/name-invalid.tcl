set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set _hidden [$ns node]
$ns run
