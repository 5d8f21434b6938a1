set ns [new Simulator]
source tb_compat.tcl

set a [$ns node]
set b [$ns node]
set lan0 [$ns make-lan "$a $b" 100Mb 0ms]
tb-set-netmask [$ns lanlink $lan0 $a] 255.255.255.0
$ns run
