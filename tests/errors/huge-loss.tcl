set ns [new Simulator]
source tb_compat.tcl

set a [$ns node]
set b [$ns node]
set link0 [$ns duplex-link $a $b 100Mb 10ms]
tb-set-link-loss $link0 1e400
$ns run
