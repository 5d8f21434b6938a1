set ns [new Simulator]
source tb_compat.tcl
set phys [$ns node]
set other [$ns node]
set link0 [$ns duplex-link $phys $other 100Mb 0ms DropTail]
tb-add-node-attribute $phys containers:node_type embedded_pnode
tb-add-node-attribute $phys containers:partition 1
tb-add-node-attribute $other containers:partition 1
$ns run
