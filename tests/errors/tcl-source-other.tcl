set ns [new Simulator]
source tb_compat.tcl
source /etc/passwd
$ns run
