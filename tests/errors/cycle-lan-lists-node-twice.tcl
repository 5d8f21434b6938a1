set ns [new Simulator]
source tb_compat.tcl

set a [$ns node]
set b [$ns node]
$ns make-lan "$a $b $a" 100Mb 0ms
$ns run
