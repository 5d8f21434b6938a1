set ns [new Simulator]
source tb_compat.tcl

set a﻿b [$ns node]
$ns run
