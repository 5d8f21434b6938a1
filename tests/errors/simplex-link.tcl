set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set b [$ns node]
$ns simplex-link $a $b 100Mb 0ms DropTail
$ns run
