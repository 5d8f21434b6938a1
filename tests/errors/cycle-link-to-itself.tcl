set ns [new Simulator]
source tb_compat.tcl

set a [$ns node]
$ns duplex-link $a $a 100Mb 10ms
$ns run
