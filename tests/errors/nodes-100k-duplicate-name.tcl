set ns [new Simulator]
source tb_compat.tcl

for {set i 0} {$i < 100000} {incr i} {
    set n($i) [$ns node]
}
set n-99999 [$ns node]
$ns run
