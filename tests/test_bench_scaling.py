"""bench/scaling.py's measurement helpers: the /proc readers and the spread statistics."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


@pytest.fixture(scope="module")
def scaling() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_scaling", BENCH / "scaling.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_scaling"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_parse_stat_counts_fields_after_the_command_name(scaling: ModuleType) -> None:
    # The command name may hold spaces and parentheses; utime..cstime are fields 14-17.
    line = "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 1 0 5 0\n"
    t = scaling.parse_stat(line, clk_tck=100)
    assert (t.user, t.system, t.children_user, t.children_system) == (2.5, 0.5, 0.07, 0.03)
    assert t.own == 3.0
    assert t.total == pytest.approx(3.1)


def test_cpu_times_of_a_live_process_grow_with_work(scaling: ModuleType) -> None:
    before = scaling.cpu_times(os.getpid())
    start = time.process_time()
    while time.process_time() - start < 0.1:
        pass
    spent = (scaling.cpu_times(os.getpid()) - before).own
    assert 0.07 <= spent <= 1.0  # clock ticks are 10 ms
    assert scaling.cpu_times(2**22 + 12345) == scaling.CpuTimes()  # no such process
    assert scaling.sched_seconds(os.getpid()) > 0


def test_connections_are_matched_to_the_process_holding_them(scaling: ModuleType) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        assert scaling.connections_by_pid([os.getpid()], port) == {os.getpid(): 0}
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        accepted = [listener.accept()[0] for _ in clients]
        try:
            # Only the server side counts (local port == port); the listener is not established.
            assert scaling.connections_by_pid([os.getpid()], port) == {os.getpid(): 3}
            accepted.pop().close()
            assert scaling.connections_by_pid([os.getpid()], port) == {os.getpid(): 2}
            assert scaling.connections_by_pid([1], port) == {1: 0}
        finally:
            for s in clients + accepted:
                s.close()


def test_io_counters_see_bytes_read(scaling: ModuleType, tmp_path: Path) -> None:
    f = tmp_path / "data"
    f.write_bytes(b"x" * 100_000)
    before = scaling.io_counters(os.getpid())["rchar"]
    f.read_bytes()
    assert scaling.io_counters(os.getpid())["rchar"] - before >= 100_000


def test_spread_statistics(scaling: ModuleType) -> None:
    s = scaling.spread([6, 10])
    assert (s.minimum, s.maximum, s.mean, s.stdev, s.max_over_mean) == (6, 10, 8.0, 2.0, 1.25)
    assert scaling.spread([5, 5, 5, 5]).stdev == 0.0
    with pytest.raises(ValueError):
        scaling.spread([])
    parts = scaling.share_counts([1.0, 1.0, 2.0], 10)
    assert sum(parts) == 10 and parts[2] == 5
    assert scaling.share_counts([0.0, 0.0], 7) == [0, 0]


def test_random_hashing_model(scaling: ModuleType) -> None:
    # 16 connections over 2 workers: |X - 8| with X ~ Binomial(16, 1/2) averages ≈ 1.57.
    sd, worst = scaling.random_hashing(16, 2, trials=2000)
    assert 1.4 < sd < 1.75
    assert 1.15 < worst < 1.25
    # More connections even out; more workers for the same connections do not.
    assert scaling.random_hashing(256, 2, trials=300)[1] < worst
    assert scaling.random_hashing(256, 16, trials=300)[1] > scaling.random_hashing(256, 2, trials=300)[1]
    # 16 connections over 16 workers leave about a third of them without one.
    assert scaling.idle_workers(16, 16) == pytest.approx(5.70, abs=0.01)
    assert scaling.idle_workers(256, 2) < 1e-6


def test_parse_wrk_count(scaling: ModuleType) -> None:
    out = (
        "Running 4s test @ http://127.0.0.1:1/\n  1 threads and 64 connections\n"
        "  12345 requests in 4.01s, 1.2MB read\n"
        "  Socket errors: connect 0, read 2, write 0, timeout 1\n"
        "  Non-2xx or 3xx responses: 4\nRequests/sec:   3078.55\n"
    )
    assert scaling.parse_wrk_count(out) == (12345, 4.01, 7)
    with pytest.raises(RuntimeError):
        scaling.parse_wrk_count("nothing")
