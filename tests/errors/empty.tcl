set ns [new Simulator]
source tb_compat.tcl
# nothing but comments
$ns rtproto Static
$ns run
