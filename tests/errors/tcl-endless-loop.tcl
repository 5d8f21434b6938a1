set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
while 1 {}
$ns run
