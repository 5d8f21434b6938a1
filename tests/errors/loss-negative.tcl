set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set b [$ns node]
set c [$ns node]
set lan0 [$ns make-lan "$a $b $c" 100Mb 0ms]
tb-set-lan-loss $lan0 -0.1
$ns run
