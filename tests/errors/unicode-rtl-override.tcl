set ns [new Simulator]
source tb_compat.tcl

set admin‮gnp [$ns node]
$ns run
