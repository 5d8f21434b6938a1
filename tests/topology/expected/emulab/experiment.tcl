# Emulab/DETER habits: commands without meaning for containers, a cloud, manual routes, openvz nodes.
set ns [new Simulator]
source tb_compat.tcl
set client_a [$ns node]
set router [$ns node]
set server [$ns node]
set lan0 [$ns make-cloud "$client_a $router" 100Mb 2ms]
set link0 [$ns duplex-link $router $server 10Mb 5ms DropTail]
tb-add-node-service-hook $server apache /bin/true
tb-set-node-rpms $client_a /proj/x/y.rpm
tb-set-node-tarfiles $server /usr/local /proj/x/z.tgz
tb-set-node-failure-action $router nonfatal
tb-add-node-attribute $server containers:node_type openvz
tb-add-node-attribute $server containers:openvz_diskspace 3G
$client_a add-route $server $router
$server add-route $lan0 $router
$ns rtproto Manual
$ns run
