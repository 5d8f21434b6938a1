set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set nöde [$ns node]
$ns run
