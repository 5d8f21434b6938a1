# Compatibility layer for DETER ns2 files, evaluated in the *safe* interpreter before the file.
#
# The testbed commands themselves (new, tb-*, the methods of $ns, nodes, links and LANs) are
# aliases into Python: see containerize/readers/ns2.py. This file only holds what has to run
# inside the interpreter:
#   - ::tb::where finds the line of the file being executed (for Node.line and error messages);
#   - a trace on `proc` remembers where each proc body starts (to place errors inside procs);
#   - `set` is wrapped so an object takes the name of the first variable that holds it.
# Helpers live in ::tb, where `set` still resolves to the builtin (renamed ::tb::set below).
# A topology file can only hurt its own parse by redefining these.

namespace eval ::tb {
    variable file ""    ;# absolute path of the topology file, set by the reader
}

# Line of the innermost command of the topology file that is executing, 0 outside the file.
# Tcl 8.6 records the file and absolute line ("source" frames) for every literal script in the
# file, proc bodies included; dynamically built scripts (eval $s) show up as "eval" frames and
# are skipped, which reports the line that built them.
proc ::tb::where {} {
    variable file
    set i [info frame]
    while {[incr i -1] > 0} {
        set f [info frame $i]
        if {[dict get $f type] eq "source" && [dict get $f file] eq $file} {
            return [dict get $f line]
        }
    }
    return 0
}

# Trace on `proc`: report the line where the body of a proc defined in the file starts, with the
# proc's qualified name. Error traces only give lines relative to a proc body
# ("procedure "p" line 3").
proc ::tb::procdef {cmd op} {
    variable file
    for {set i [info frame]} {$i > 0} {incr i -1} {
        set f [info frame $i]
        if {[dict get $f type] eq "source" && [dict get $f file] eq $file} {
            set text [dict get $f cmd]
            set line [dict get $f line]
            set at [string last [lindex $cmd end] $text]
            if {$at > 0} {
                incr line [regexp -all {\n} [string range $text 0 [expr {$at - 1}]]]
            }
            set name [lindex $cmd 1]
            if {![string match ::* $name]} {
                set name [string trimright [uplevel 1 {namespace current}] :]::$name
            }
            ::tb::procline $name $line
            return
        }
    }
}
trace add execution proc enter ::tb::procdef

# `set var [$ns node]` names the node after `var` (n(3) -> n-3), as DETER does. Only variables
# that outlive the assignment count: globals, or proc variables linked to a global; a proc's
# local temporaries do not name anything. Object handles look like _o12.
rename ::set ::tb::set
proc ::set {args} {
    if {[llength $args] == 2 && [string match {_o[0-9]*} [lindex $args 1]]} {
        ::tb::set var [lindex $args 0]
        upvar 1 $var target
        ::tb::set value [::tb::set target [lindex $args 1]]
        if {[info level] == 1
                || ([info exists ::$var] && ![catch {::tb::set ::$var} global] && $global eq $value)} {
            ::tb::name $value $var
        }
        return $value
    }
    if {[llength $args] == 1 || [llength $args] == 2} {
        tailcall ::tb::set {*}$args
    }
    return -code error {wrong # args: should be "set varName ?newValue?"}
}

# A shell command substitution in a string, "echo $(hostname)", reads an element of the global
# array named "" to Tcl: an error. Start commands use it, so that array gives the text back and
# "$(hostname)" stays "$(hostname)".
proc ::tb::shell {name index op} {
    ::tb::set ::($index) "\$($index)"
}
array set {} {}
trace add variable {} read ::tb::shell
