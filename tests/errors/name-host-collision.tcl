set ns [new Simulator]
source tb_compat.tcl
set web [$ns node]
set web_front [$ns node]
set gw [$ns node]
set front [$ns duplex-link $web $gw 100Mb 0ms DropTail]
set back [$ns duplex-link $web_front $gw 100Mb 0ms DropTail]
$ns run
