set ns [new Simulator]
source tb_compat.tcl

set members {}
for {set i 0} {$i < 100000} {incr i} {
    set n($i) [$ns node]
    lappend members $n($i)
}
set lan0 [$ns make-lan $members 100Mb 0ms]
tb-set-netmask $lan0 255.255.255.0
$ns run
