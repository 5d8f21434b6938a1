set ns [new Simulator]
source tb_compat.tcl
set a [$ns node]
set b [$ns node]
foreach i {1 2 3 {
    set n($i) [$ns node]
}
$ns run
