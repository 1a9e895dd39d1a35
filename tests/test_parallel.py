"""Thread counts are process-wide: training sets them for itself and restores them afterwards."""

from __future__ import annotations

import subprocess
import sys

import numba

from itemvec.parallel import thread_limit


def test_thread_limit_sets_and_restores_numba_threads():
    before = numba.get_num_threads()
    with thread_limit(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with thread_limit(0):
        assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS
    assert numba.get_num_threads() == before


def test_training_leaves_the_thread_count_as_it_found_it(tmp_path):
    from test_models import two_cliques

    from itemvec.models.itemitem.mf import MF

    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    MF(threads=1, epochs=1, dim=4).fit(two_cliques()[0], progress=False)
    assert numba.get_num_threads() == numba.config.NUMBA_NUM_THREADS


def test_a_numba_model_does_not_load_torch():
    code = ("import sys; from itemvec.parallel import thread_limit\n"
            "with thread_limit(1): pass\n"
            "from itemvec.models.itemitem import mf\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stderr
