set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set b [$ns node]
set c [$ns node]
set lan0 [$ns make-lan "$a $b $c" 100Mb 0ms]
tb-set-netmask $lan0 255.255.255.252
tb-set-ip-lan $a $lan0 10.1.1.1
$ns run
