set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set b [$ns node]
set c [$ns node]
set lan0 [$ns make-lan "$a $b $c" 100Mb 0ms]
tb-set-ip-lan $a $lan0 10.1.1.5
tb-set-ip-lan $b $lan0 10.1.1.5
$ns run
