"""The demo's worker processes end with the process that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = """
import multiprocessing, os, sys, time
from concurrent.futures import ProcessPoolExecutor
from hieroaction.demo.runner import die_with_parent

if __name__ == "__main__":
    kwargs = {"initializer": die_with_parent, "initargs": (os.getpid(),)} if sys.argv[1] == "1" else {}
    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), **kwargs)
    print(pool.submit(os.getpid).result(), flush=True)
    pool.submit(time.sleep, 120)
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().split(") ")[1][0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


def _worker_after_parent_is_killed(tmp_path: Path, guarded: bool, wait: float) -> tuple[int, bool]:
    script = tmp_path / "pool.py"
    script.write_text(SCRIPT, encoding="utf-8")
    parent = subprocess.Popen([sys.executable, str(script), "1" if guarded else "0"], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    worker = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)  # no chance to clean up: only the kernel can end the worker
    parent.wait()
    deadline = time.monotonic() + wait
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    return worker, _alive(worker)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_worker_ends_when_the_demo_process_is_killed(tmp_path):
    worker, alive = _worker_after_parent_is_killed(tmp_path, guarded=True, wait=15)
    assert not alive
    # the same pool without it leaves the worker running on, as the demo did
    worker, alive = _worker_after_parent_is_killed(tmp_path, guarded=False, wait=3)
    try:
        assert alive
    finally:
        try:
            os.kill(worker, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_a_last_round_of_fewer_seeds_gets_the_idle_processes():
    from hieroaction.demo.runner import seed_stage_jobs

    # 3 seeds, 2 at a time on 2 processes: seeds 0 and 1 share the machine, seed 2 runs alone
    # and uses both (before: one run at a time, a core idle)
    assert seed_stage_jobs(3, 2, 2) == [1, 1, 2]
    assert seed_stage_jobs(2, 2, 2) == [1, 1]
    assert seed_stage_jobs(5, 2, 4) == [2, 2, 2, 2, 4]
    assert seed_stage_jobs(4, 3, 6) == [2, 2, 2, 6]
