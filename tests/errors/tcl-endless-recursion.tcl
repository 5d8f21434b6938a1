set ns [new Simulator]
source tb_compat.tcl
proc deeper {n} {
    return [deeper [expr {$n + 1}]]
}
set a [$ns node]
deeper 0
$ns run
