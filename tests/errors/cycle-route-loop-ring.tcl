set ns [new Simulator]
source tb_compat.tcl

set a [$ns node]
set b [$ns node]
set c [$ns node]
set d [$ns node]
$ns duplex-link $a $b 10Mb 1ms
$ns duplex-link $b $c 10Mb 1ms
$ns duplex-link $c $a 10Mb 1ms
set far [$ns duplex-link $c $d 10Mb 1ms]
$ns rtproto Manual
$a add-route $far $b
$b add-route $far $c
$c add-route $far $a
$ns run
