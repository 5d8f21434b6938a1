set ns [new Simulator]
source tb_compat.tcl
set router [$ns node]
set Router [$ns node]
set link0 [$ns duplex-link $router $Router 100Mb 0ms DropTail]
$ns run
