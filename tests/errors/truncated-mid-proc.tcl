set ns [new Simulator]
source tb_compat.tcl

proc make {n} {
    global ns
    for {set i 0} {$i < $n} {incr i} {
