set ns [new Simulator]
source tb_compat.tcl

set a [$ns node]
set b [$ns node]
set lan0 [$ns make-lan "$a $b" 100Mb 0ms]
tb-set-node-os $lan0 Ubuntu1804-STD
$ns run
