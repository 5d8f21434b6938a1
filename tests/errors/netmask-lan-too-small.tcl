set ns [new Simulator]
source tb_compat.tcl
for {set i 0} {$i < 300} {incr i} {
    set n($i) [$ns node]
    lappend members $n($i)
}
set big [$ns make-lan $members 100Mb 0ms]
tb-set-netmask $big 255.255.255.0
$ns run
