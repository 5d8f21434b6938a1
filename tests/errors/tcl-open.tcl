set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set f [open /etc/passwd r]
$ns run
