set ns [new Simulator]
source tb_compat.tcl
for {set i 0} {$i < 3} {incr i} {
    set n($i) [$ns node]
    if {$i == 2} {
        tb-set-node-colour $n($i) red
    }
}
$ns run
