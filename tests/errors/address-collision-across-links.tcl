set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set b [$ns node]
set c [$ns node]
set link0 [$ns duplex-link $a $b 100Mb 0ms DropTail]
set link1 [$ns duplex-link $b $c 100Mb 0ms DropTail]
tb-set-ip-link $a $link0 10.1.1.1
tb-set-ip-link $c $link1 10.1.1.2
$ns run
