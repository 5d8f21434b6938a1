set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set b [$ns node]
set link0 [$ns duplex-link $a $b 10Mb 5ms DropTail]
tb-set-link-simplex-params $link0 $a soon 10Mb 0
$ns run
