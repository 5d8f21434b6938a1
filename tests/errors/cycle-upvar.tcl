set ns [new Simulator]
source tb_compat.tcl

set a [$ns node]
set b [$ns node]
$ns duplex-link $a $b 100Mb 10ms
upvar 0 x y
upvar 0 y x
set x 1
$ns run
