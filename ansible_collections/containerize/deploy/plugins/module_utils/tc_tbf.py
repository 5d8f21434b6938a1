"""tc's arithmetic for a tbf qdisc, as tc/tc_core.c and tc/q_tbf.c of iproute2 do it (netlink.tbf_options).

The same numbers `tc qdisc add ... tbf` sends, so `tc -s qdisc` shows the same thing whichever set it.
Standard library only (see daemons.py).
"""

from __future__ import annotations

import struct

TC_LINKLAYER_ETHERNET = 1
TC_RATESPEC = "BBHhHI"  # cell_log, linklayer, overhead, cell_align, mpu, rate
TC_TBF_QOPT = struct.Struct("=" + TC_RATESPEC + TC_RATESPEC + "III")  # rate, peakrate, limit, buffer, mtu

TIME_UNITS_PER_SEC = 1000000
_tick_in_usec = None


def _c_uint(value, vectorized=False):
    """A non-negative double converted to a C unsigned int as iproute2's x86-64 build does it.

    Out of range is undefined in C: the scalar code keeps the low 32 bits; the loop filling the rate table
    (vectorized) gives 0. Only rates below ~60 bit/s, bursts worth over ~275 s, or limits over 4 GB get there.
    """
    if vectorized and value >= 1 << 32:
        return 0
    return int(value) & 0xFFFFFFFF


def tc_tick_in_usec():
    """Kernel scheduler ticks per microsecond, from /proc/net/psched as tc_core_init() reads it (1 if unreadable)."""
    global _tick_in_usec
    if _tick_in_usec is None:
        tick_in_usec = 1.0
        try:
            with open("/proc/net/psched", encoding="ascii") as handle:
                t2us, us2t, clock_res = (int(field, 16) for field in handle.read().split()[:3])
            if clock_res == 1000000000:  # kernels with ns resolution advertise 1000 meaning 1
                t2us = us2t
            clock_factor = clock_res / TIME_UNITS_PER_SEC
            tick_in_usec = t2us / us2t * clock_factor
        except (OSError, ValueError, ZeroDivisionError):
            pass
        _tick_in_usec = tick_in_usec
    return _tick_in_usec


def tc_xmittime(rate_bytes, size, vectorized=False):
    """Ticks to send SIZE bytes at RATE_BYTES per second (tc_calc_xmittime: two truncations to unsigned)."""
    usecs = _c_uint(TIME_UNITS_PER_SEC * (size / rate_bytes), vectorized)
    return _c_uint(usecs * tc_tick_in_usec(), vectorized)


_rate_tables = {}


def _tbf_rate_table(rate32):
    """(cell_log, packed rate table) tc sends for RATE32 bytes/s; kept, as a run uses few rates on many links."""
    table = _rate_tables.get(rate32)
    if table is None:
        mtu, cell_log = 2047, 0  # no mtu given: tc sizes the table for 2047-byte packets
        while (mtu >> cell_log) > 255:
            cell_log += 1
        tick_in_usec = tc_tick_in_usec()  # tc_xmittime(rate32, size, vectorized=True), inlined: 256 of them
        ticks = [
            min(int(int(TIME_UNITS_PER_SEC * (((slot + 1) << cell_log) / rate32)) * tick_in_usec), 1 << 32) & 0xFFFFFFFF
            for slot in range(256)
        ]  # below 2**32 microseconds: at most 2048 bytes at 1 byte/s
        if len(_rate_tables) >= 256:
            _rate_tables.clear()
        table = _rate_tables[rate32] = (cell_log, struct.pack("=256I", *ticks))
    return table


def tbf_parameters(rate_bps, burst_bytes, latency_us):
    """(packed tc_tbf_qopt, rate in bytes/s, packed rate table) of `tc qdisc ... tbf rate RATE_BPS bit burst
    BURST_BYTES latency LATENCY_US us`: what netlink.tbf_options sends."""
    rate64 = int(float(rate_bps) / 8)  # get_rate64: bits to bytes, truncated
    if rate64 <= 0 or burst_bytes <= 0 or latency_us <= 0:
        raise ValueError("tbf needs a positive rate, burst and latency")
    rate32 = 0xFFFFFFFF if rate64 >= 1 << 32 else rate64
    limit = _c_uint(rate64 * float(latency_us) / TIME_UNITS_PER_SEC + burst_bytes)
    cell_log, rtab = _tbf_rate_table(rate32)
    buffer_ticks = tc_xmittime(rate32, burst_bytes)
    qopt = TC_TBF_QOPT.pack(
        cell_log, TC_LINKLAYER_ETHERNET, 0, -1, 0, rate32,  # rate: overhead 0, cell_align -1, mpu 0
        0, 0, 0, 0, 0, 0,  # no peakrate
        limit, buffer_ticks, 0,
    )  # fmt: skip
    return qopt, rate64, rtab
