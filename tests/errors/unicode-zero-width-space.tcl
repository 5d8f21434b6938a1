set ns [new Simulator]
source tb_compat.tcl

set web​1 [$ns node]
$ns run
