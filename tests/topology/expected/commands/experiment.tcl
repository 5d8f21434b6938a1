# Every compatibility command the reader knows, in one file.
set ns [new Simulator]
source tb_compat.tcl
tb-make-soft-vtype fastpc {pc3000 pc2133}
for {set i 0} {$i < 4} {incr i} { set h($i) [$ns node] }
set gw [$ns node]
set srv [$ns node]
set l0 [$ns duplex-link $h(0) $gw 10Mb 5ms DropTail]
set l1 [$ns duplex-link $gw $srv 1Gb 1ms DropTail]
set lan [$ns make-lan "$h(1) $h(2) $h(3) $gw" 100Mb 10ms]
tb-set-link-loss $l0 0.05
tb-set-link-loss $gw $srv 0.01
tb-set-lan-loss $lan 0.02
tb-set-node-lan-delay $lan $h(1) 3ms
tb-set-node-lan-bandwidth $lan $h(2) 5Mb
tb-set-node-lan-loss $lan $h(3) 0.1
tb-set-link-simplex-params $l1 $srv 20ms 2Mb 0.0
tb-set-ip-link $srv $l1 192.168.9.2
tb-set-ip-lan $h(1) $lan 10.20.0.11
tb-set-netmask $lan 255.255.255.0
tb-set-node-os $srv Ubuntu1804-STD
tb-set-hardware $srv fastpc
tb-set-node-startcmd $srv "echo hello > /tmp/x"
tb-add-node-attribute $h(0) containers:ghost true
tb-add-node-attribute $srv containers:PartitionPass 1
set udp [new Agent/UDP]
$ns attach-agent $h(0) $udp
$ns at 1.0 "$udp start"
$ns rtproto Static
$ns run
