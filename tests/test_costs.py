"""What a stage costs: the peak memory within the stage (not since the process began), CPU and wall seconds."""

from __future__ import annotations

import time

import numpy as np
import pytest

from itemvec.costs import Cost, max_rss_mb, rss_mb

pytestmark = pytest.mark.skipif(rss_mb() is None, reason="needs /proc/self/statm (Linux)")


def test_the_peak_is_the_stages_own():
    before = np.ones(400 * 2**20 // 8)  # 400 MB, touched, then freed: the process's high-water mark, not the stage's
    del before
    high = max_rss_mb()
    with Cost(interval=0.01) as small:
        little = np.ones(2**20)
        time.sleep(0.05)
    assert small.peak_mb < high - 300
    with Cost(interval=0.01) as large:
        big = np.ones(300 * 2**20 // 8)
        time.sleep(0.05)
        del big
    assert large.peak_mb > (rss_mb() or 0) + 250  # seen while it lived, though freed before the stage ended
    del little


def test_cpu_and_wall_seconds_and_the_record():
    with Cost() as idle:
        time.sleep(0.2)
    with Cost() as busy:  # busy until this process has used 0.2 s of CPU (however loaded the machine is)
        start, give_up = time.process_time(), time.perf_counter() + 30
        while time.process_time() - start < 0.2 and time.perf_counter() < give_up:
            pass
    assert idle.wall >= 0.2 and idle.cpu < 0.1
    assert busy.cpu >= 0.2 and busy.wall >= 0.1
    record = busy.record("train")
    assert set(record) == {"train_seconds", "train_cpu_seconds", "train_peak_rss_mb", "train_load_average"}
    assert record["train_load_average"] is None or record["train_load_average"] >= 0
