set ns [new Simulator]
source tb_compat.tcl

set a [$ns node]
set b [$ns node]
set c [$ns node]
$ns duplex-link $a $b 10Mb 1ms
$ns duplex-link $b $c 10Mb 1ms
$ns rtproto Manual
$a add-route $c $b
$b add-route $c $a
$ns run
