set ns [new Simulator]
source tb_compat.tcl

set a [$ns node]
set b [$ns node]
set link0 [$ns duplex-link $a $b 100Mb 10ms]
tb-set-ip-link $a $link0 10.1.1.1
tb-set-netmask $link0 128.0.0.0
$ns run
