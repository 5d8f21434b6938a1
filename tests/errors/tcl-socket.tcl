set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
if {1} {
    set s [socket 127.0.0.1 22]
}
$ns run
