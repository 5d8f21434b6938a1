# Manual routing: only the add-route lines of the file.
set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set r [$ns node]
set b [$ns node]
set l1 [$ns duplex-link $a $r 100Mb 0ms DropTail]
set l2 [$ns duplex-link $r $b 100Mb 0ms DropTail]
$a add-route $b $r
$b add-route $l1 $r
$ns rtproto Manual
$ns run
