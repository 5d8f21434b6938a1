set ns [new Simulator]
source tb_compat.tcl
set hub [$ns node]
tb-add-node-attribute $hub containers:node_type qemu
for {set i 0} {$i < 29} {incr i} {
    set leaf($i) [$ns node]
    set link($i) [$ns duplex-link $hub $leaf($i) 100Mb 0ms DropTail]
}
$ns run
