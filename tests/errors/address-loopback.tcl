set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set b [$ns node]
set link0 [$ns duplex-link $a $b 100Mb 0ms DropTail]
tb-set-ip-link $b $link0 127.0.0.2
$ns run
