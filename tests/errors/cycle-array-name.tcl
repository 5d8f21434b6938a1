set ns [new Simulator]
source tb_compat.tcl

set l-a [$ns node]
set b [$ns node]
set c [$ns node]
set l(a) [$ns duplex-link $b $c 10Mb 1ms]
$ns duplex-link ${l-a} $b 10Mb 1ms
$ns run
