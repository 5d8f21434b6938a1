set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set b [$ns node]
set c [$ns node]
set lan0 [$ns make-lan "$a $b $c" fast 0ms]
$ns run
