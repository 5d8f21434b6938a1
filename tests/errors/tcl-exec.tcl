set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set who [exec id -un]
$ns run
