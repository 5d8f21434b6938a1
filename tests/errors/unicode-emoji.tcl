set ns [new Simulator]
source tb_compat.tcl

set 🖥 [$ns node]
$ns run
