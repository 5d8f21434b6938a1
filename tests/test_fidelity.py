"""Link shaping does what the topology declares: bench/fidelity.py's quick cases, with loose targets.

The measurements are marked slow (a real swap-in of process nodes, VDE switches and wirefilters, about
40 s). The machine running them is shared and has 2 cores, so only what load cannot fake is asserted:
the fastest ping sees the declared delay (tests.e2e.delay_error; a 1 ms link shows none unless the
wirefilters' whole milliseconds add up), loss is inside a wide interval (99.9 %, and up to 3 points
more for packets dropped by busy switches), and the throughput never exceeds the declared rate by more
than 10 % and reaches at least half of it. The bench prints the exact errors.
"""

from __future__ import annotations

import pytest

from bench import fidelity
from tests.e2e import delay_error

slow = pytest.mark.slow


def test_topology_has_one_link_per_case():
    text = fidelity.topology([fidelity.Case("x", "loss", 10, delay_ms=2.5, loss=0.01)])
    assert "set x [$ns duplex-link $xa $xb 10Mb 2.5ms DropTail]" in text
    assert "tb-set-link-loss $x 0.01" in text


def test_wilson_interval():
    low, high = fidelity.wilson(20, 1000)
    assert 0.0129 < low < 0.0131 and 0.0306 < high < 0.0308
    assert fidelity.wilson(0, 1000)[0] == 0.0
    assert abs(fidelity.round_trip_loss(0.1) - 0.19) < 1e-12


@pytest.fixture(scope="module")
def measured() -> dict[str, dict]:
    cases = [case for case in fidelity.CASES if case.name in fidelity.QUICK]
    return {result["case"]: result for result in fidelity.run(cases)}


def of_kind(measured: dict[str, dict], kind: str) -> list[dict]:
    found = [result for result in measured.values() if result["kind"] == kind]
    assert found, f"no {kind} case among {fidelity.QUICK}"
    return found


@slow
def test_delay(measured):
    for result in of_kind(measured, "delay"):
        assert result["planned_rtt_ms"] == pytest.approx(result["declared_rtt_ms"]), result["title"]
        # 2 ms, not the bench's 1 ms target: four wirefilters and two taps add ~0.8 ms, and a shared CI
        # machine adds its scheduling to even the fastest of 50 pings (bench/fidelity.py reports the 1 ms target)
        error = delay_error(result["rtts"], result["declared_rtt_ms"], allowance_ms=2.0)
        assert not error, f"{result['title']}: {error}"


@slow
def test_loss(measured):
    for result in of_kind(measured, "loss"):
        assert result["sent"] >= 1000
        low, high = fidelity.wilson(result["lost"], result["sent"], z=3.29)
        assert low - 0.03 <= result["expected"] <= high, (
            f"{result['title']}: {result['lost']}/{result['sent']} lost, expected {result['expected']:.4f}")


@slow
def test_bandwidth(measured):
    for result in of_kind(measured, "bandwidth"):
        rate, declared = result["measured_mbit"], result["declared_mbit"]
        assert 0.5 * declared <= rate <= 1.1 * declared, f"{result['title']}: {rate:.2f} Mb/s"
