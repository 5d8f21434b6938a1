set ns [new Simulator]
source tb_compat.tcl

set a [$ns node]
set b [$ns node]
$ns duplex-link $a $b 100Mb 10ms
$ns run
