set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set b [$ns node]
set link0 [$ns duplex-link $a $b 100Mb 0ms DropTail]
tb-add-node-attribute $a containers:cpus "0 1"
tb-add-node-attribute $a containers:node_type process
$ns run
