set ns [new Simulator]
source tb_compat.tcl

set a [$ns node]
set b [$ns node]
set link0 [$ns duplex-link $a $b 100Mb 10ms]
set c [$ns node]
$ns duplex-link $link0 $c 10Mb 0ms
$ns run
