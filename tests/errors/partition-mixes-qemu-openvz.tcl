set ns [new Simulator]
source tb_compat.tcl
set vm [$ns node]
set ct [$ns node]
set link0 [$ns duplex-link $vm $ct 100Mb 0ms DropTail]
tb-add-node-attribute $vm containers:node_type qemu
tb-add-node-attribute $ct containers:node_type openvz
tb-add-node-attribute $vm containers:partition 0
tb-add-node-attribute $ct containers:partition 0
$ns run
