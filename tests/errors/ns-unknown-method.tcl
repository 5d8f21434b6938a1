set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
$ns make-wan "$a" 10Mb 0ms
$ns run
