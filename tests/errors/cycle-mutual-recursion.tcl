set ns [new Simulator]
source tb_compat.tcl

set a [$ns node]
set b [$ns node]
proc ping {n} { pong $n }
proc pong {n} { ping $n }
ping 1
$ns run
