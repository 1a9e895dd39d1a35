"""Export (word2vec text and binary read by gensim, Parquet read by pyarrow and polars) and the nearest-neighbour
index (the algebra that turns every scoring rule into one inner product, HNSW against the exact scan, filters,
exactly k results, a stale index refused), through the library and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_ratings_cli import prepare_planted_ratings  # noqa: E402

import itemvec  # noqa: E402
from itemvec.index import FaissIndex, exact_search, recommend_space, similar_space  # noqa: E402
from itemvec.models.embedding import Embedding  # noqa: E402


def cli(*args):
    return subprocess.run([sys.executable, "-m", "itemvec.cli", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def item_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    itemvec.synth_amazon(root / "cat.json.gz", products=1500, seed=4, progress=False)
    itemvec.prepare_amazon([root / "cat.json.gz"], root / "data", seed=4, progress=False, log=lambda line: None)
    itemvec.train_run("mf-bias", root / "data", root / "run", sets={"epochs": "2", "dim": "16", "threads": "1"},
                      progress=False)
    return root


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("export-users")
    prepare_planted_ratings(root)
    itemvec.train_run("bpr", root / "data", root / "run", sets={"epochs": "3", "dim": "8", "threads": "1"},
                      progress=False)
    return root


# ---------------------------------------------------------------- the algebra


def random_embedding(rule: str, bias: bool, users: bool = False, seed: int = 0) -> Embedding:
    rng = np.random.default_rng(seed)
    n, dim = 50, 6
    return Embedding(rule=rule, item_vectors=rng.standard_normal((n, dim)).astype(np.float32),
                     context_vectors=rng.standard_normal((n, dim)).astype(np.float32) if rule == "two-role" else None,
                     item_bias=rng.standard_normal(n).astype(np.float32) if bias else None,
                     global_bias=0.7 if bias else 0.0,
                     user_vectors=rng.standard_normal((30, dim)).astype(np.float32) if users else None,
                     user_bias=rng.standard_normal(30).astype(np.float32) if users and bias else None)


@pytest.mark.parametrize("rule", ["dot", "two-role", "cosine"])
@pytest.mark.parametrize("bias", [False, True])
def test_every_item_rule_is_one_inner_product_plus_a_constant_per_query(rule, bias):
    emb = random_embedding(rule, bias and rule != "cosine")
    space = similar_space(emb)
    queries = np.arange(len(emb.item_vectors))
    via_space = space.queries.astype(np.float64) @ space.keys.T.astype(np.float64) + space.offset[:, None]
    np.testing.assert_allclose(via_space, emb.score_all(queries), rtol=1e-5, atol=1e-5)
    a, b = np.array([3, 7, 11]), np.array([9, 2, 40])
    np.testing.assert_allclose(via_space[a, b], emb.score_pairs(a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bias", [False, True])
def test_the_user_item_score_is_one_inner_product_plus_a_constant_per_user(bias):
    emb = random_embedding("dot", bias, users=True)
    space = recommend_space(emb)
    users = np.arange(30)
    via_space = space.queries.astype(np.float64) @ space.keys.T.astype(np.float64) + space.offset[:, None]
    np.testing.assert_allclose(via_space, emb.score_users(users), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- HNSW against the exact scan


@pytest.mark.parametrize("backend, settings", [("hnsw", {"m": 16, "ef_construction": 100, "ef_search": 128}),
                                               ("ivf", {"nprobe": 96})])
def test_the_index_finds_what_the_exact_scan_finds_with_filters_and_exactly_k(backend, settings):
    rng = np.random.default_rng(1)
    n = 6000
    emb = Embedding(rule="two-role", item_vectors=rng.standard_normal((n, 16)).astype(np.float32),
                    context_vectors=rng.standard_normal((n, 16)).astype(np.float32),
                    item_bias=rng.standard_normal(n).astype(np.float32))
    space = similar_space(emb)
    learned = np.ones(n, dtype=bool)
    learned[::50] = False  # items the model never learned are not in the index
    index = FaissIndex.build(space.keys, learned, backend=backend, **settings)
    assert index.index.ntotal == learned.sum() and index.backend == backend
    hits = total = 0
    for query in range(0, n, 97):
        allowed = learned.copy()
        allowed[query] = False
        ids, scores = index.search(space, query, 10, allowed)
        truth, truth_scores = exact_search(space, query, 10, allowed)
        assert len(ids) == 10 and allowed[ids].all() and np.all(np.diff(scores) <= 1e-9)
        np.testing.assert_allclose(scores, emb.score_pairs(np.full(10, query), ids), rtol=1e-5, atol=1e-5)
        hits += len(set(ids) & set(truth))
        total += 10
    assert hits / total >= 0.95, hits / total
    # A filter that leaves few items (a category) still gives exactly k, all of them allowed.
    category = np.zeros(n, dtype=bool)
    category[rng.choice(n, 40, replace=False)] = True
    ids, _ = index.search(space, 5, 10, category & learned)
    assert len(ids) == 10 and (category & learned)[ids].all()
    ids, scores = index.search(space, 5, 10, np.eye(n, dtype=bool)[7])  # one allowed item: padded
    assert ids.tolist() == [7] + [-1] * 9 and np.isnan(scores[1:]).all()
    # A leave-out list (the query, its partners) is dropped from a larger answer: the same as masking them.
    leave_out = np.flatnonzero(learned)[:40]
    mask = learned.copy()
    mask[leave_out] = False
    for query in (3, 1234):
        listed = index.search(space, query, 10, exclude=leave_out)
        masked = index.search(space, query, 10, mask)
        assert len(listed[0]) == 10 and not np.isin(listed[0], leave_out).any()
        assert len(set(listed[0]) & set(masked[0])) >= 8
    # Asking for more than the unlisted items leaves the exact scan to answer: still exactly what is allowed.
    ids, _ = index.search(space, 3, 10, exclude=np.flatnonzero(learned)[10:])
    assert sorted(ids.tolist()) == sorted(np.flatnonzero(learned)[:10].tolist())


def test_ivf_lists_follow_the_number_of_items():
    from itemvec.index import default_nlist, default_nprobe

    assert default_nlist(10) == 1 and default_nlist(5880) == 128  # 8√n = 613, but 39 vectors per list at least
    assert default_nlist(346_429) == 4096 and default_nprobe(4096) == 48 and default_nprobe(128) == 16
    assert default_nprobe(4) == 4


def test_the_index_round_trips_through_bytes():
    rng = np.random.default_rng(2)
    keys = rng.standard_normal((5000, 8)).astype(np.float32)
    learned = np.ones(5000, dtype=bool)
    space = similar_space(Embedding(rule="dot", item_vectors=keys))
    index = FaissIndex.build(space.keys, learned)
    again = FaissIndex.from_bytes(index.to_bytes(), np.flatnonzero(learned), 5000, 64)
    allowed = learned.copy()
    allowed[3] = False
    assert np.array_equal(index.search(space, 3, 10, allowed)[0], again.search(space, 3, 10, allowed)[0])


# ---------------------------------------------------------------- export


def test_word2vec_exports_load_in_gensim_and_rank_as_itemvec_does(item_run, tmp_path):
    from gensim.models import KeyedVectors

    model, data, _ = itemvec.open_run(item_run / "run")
    emb = model.embedding()
    cosine = similar_space(emb, cosine=True)
    learned = np.flatnonzero(model.known_items_)
    for fmt, binary in (("word2vec", False), ("word2vec-binary", True)):
        out = tmp_path / f"vectors.{fmt}"
        result = cli("export", item_run / "run", "--format", fmt, "--out", out)
        assert result.returncode == 0, result.stderr
        kv = KeyedVectors.load_word2vec_format(out, binary=binary)
        assert len(kv) == len(learned) and kv.vector_size == 16
        assert np.array_equal(kv[data.asins[learned[0]]], emb.item_vectors[learned[0]])  # exact float32
        for query in learned[:20]:
            allowed = model.known_items_.copy()
            allowed[query] = False
            ids, scores = exact_search(cosine, int(query), 5, allowed)
            theirs = kv.most_similar(data.asins[query], topn=5)
            assert [key for key, _ in theirs] == [data.asins[i] for i in ids]
            np.testing.assert_allclose([s for _, s in theirs], scores, rtol=1e-4, atol=1e-5)
    # two-role: the context side too, with a suffix
    out = tmp_path / "both.txt"
    assert cli("export", item_run / "run", "--context", "--out", out).returncode == 0
    kv = KeyedVectors.load_word2vec_format(out)
    assert len(kv) == 2 * len(learned)
    assert np.array_equal(kv[data.asins[learned[1]] + "#context"], emb.context_vectors[learned[1]])


def test_parquet_export_holds_ids_vectors_biases_and_the_model_in_its_metadata(item_run, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "vectors.parquet"
    assert cli("export", item_run / "run", "--format", "parquet", "--out", out).returncode == 0
    table = pq.read_table(out)
    model, data, _ = itemvec.open_run(item_run / "run")
    learned = np.flatnonzero(model.known_items_)
    assert table.schema.field("vector").type == pa.list_(pa.float32(), 16)
    assert table["id"].to_pylist() == [data.asins[i] for i in learned]
    vectors = np.stack(table["vector"].to_numpy(zero_copy_only=False))
    assert np.array_equal(vectors, model.item_vectors_[learned])
    assert np.array_equal(table["bias"].to_numpy(), model.item_bias_[learned])
    meta = json.loads(table.schema.metadata[b"itemvec"])
    assert meta["model"] == "mf-bias" and meta["rule"] == "two-role" and meta["dim"] == 16
    assert meta["data_fingerprint"] == data.fingerprint
    polars = pytest.importorskip("polars")
    assert polars.read_parquet(out).shape == (len(learned), 3)
    # written again over its own file; a file of the user's is refused
    assert cli("export", item_run / "run", "--format", "parquet", "--out", out).returncode == 0
    mine = tmp_path / "mine.txt"
    mine.write_text("precious\n")
    result = cli("export", item_run / "run", "--out", mine)
    assert result.returncode == 2 and "was not written by itemvec" in result.stderr
    assert mine.read_text() == "precious\n"


def test_user_vectors_of_a_user_item_run(user_run, tmp_path):
    from gensim.models import KeyedVectors

    out = tmp_path / "users.txt"
    result = cli("export", user_run / "run", "--users", "--out", out)
    assert result.returncode == 0, result.stderr
    model, data, _ = itemvec.open_run(user_run / "run")
    kv = KeyedVectors.load_word2vec_format(out)
    assert len(kv) == int(model.known_users_.sum()) and "1" in kv.key_to_index
    assert np.array_equal(kv["1"], model.user_vectors_[0])


def test_a_model_without_vectors_is_refused_in_one_line(item_run, tmp_path):
    itemvec.train_run("popularity", item_run / "data", tmp_path / "pop", progress=False)
    for args in (("export", tmp_path / "pop", "--out", tmp_path / "x.txt"), ("index", tmp_path / "pop")):
        result = cli(*args)
        assert result.returncode == 2 and "has no vectors" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- the index through the CLI


@pytest.mark.parametrize("backend", [["--backend", "faiss-hnsw", "--m", "16"], ["--backend", "ivf"]])
def test_similar_and_recommend_use_the_index_and_agree_with_the_exact_scan(item_run, user_run, tmp_path, backend):
    model, data, _ = itemvec.open_run(item_run / "run")
    asins = [data.asins[i] for i in np.flatnonzero(model.known_items_)[:8]]
    for name in ("index.json", "index.faiss"):  # the other parametrisation's index
        (item_run / "run" / name).unlink(missing_ok=True)
    exact = json.loads(cli("similar", item_run / "run", *asins, "--json").stdout)
    result = cli("index", item_run / "run", *backend)
    assert result.returncode == 0 and "similar:" in result.stdout, result.stderr
    expected = {"faiss-hnsw": "faiss-hnsw", "ivf": "faiss-ivf"}[backend[1]]
    assert json.loads((item_run / "run" / "index.json").read_text())["backend"] == expected
    assert (item_run / "run" / "index.faiss").is_file()
    from itemvec.runs import run_neighbours

    assert run_neighbours(item_run / "run", model).uses_index
    indexed = json.loads(cli("similar", item_run / "run", *asins, "--json").stdout)
    for a, b in zip(exact, indexed):  # a small catalogue: the graph search finds the exact neighbours
        assert [n["asin"] for n in a["similar"]] == [n["asin"] for n in b["similar"]]
        np.testing.assert_allclose([n["score"] for n in a["similar"]], [n["score"] for n in b["similar"]],
                                   rtol=1e-5)
    # user-item: recommend through the index, seen items still excluded
    exact = json.loads(cli("recommend", user_run / "run", "--user", "1", "--user", "2", "--json").stdout)
    assert cli("index", user_run / "run", *backend).returncode == 0
    indexed = json.loads(cli("recommend", user_run / "run", "--user", "1", "--user", "2", "--json").stdout)
    assert [[r["item"] for r in u["recommendations"]] for u in exact] == \
        [[r["item"] for r in u["recommendations"]] for u in indexed]


def test_an_index_of_other_weights_is_refused_and_retraining_removes_it(item_run, tmp_path):
    run = tmp_path / "run"
    itemvec.train_run("mf", item_run / "data", run, sets={"epochs": "1", "dim": "8"}, progress=False)
    assert cli("index", run).returncode == 0
    with open(run / "weights.npz", "ab") as f:  # the weights change under the index
        f.write(b"\0")
    model_asin = itemvec.open_data(item_run / "data").asins[0]
    result = cli("similar", run, model_asin)
    assert result.returncode == 2 and ("other weights" in result.stderr or "weights.npz" in result.stderr)
    itemvec.train_run("mf", item_run / "data", run, sets={"epochs": "1", "dim": "8"}, progress=False, resume=False)
    assert not (run / "index.json").exists() and not (run / "index.faiss").exists()


def test_a_damaged_index_file_is_one_line_and_exit_2(item_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(item_run / "run", run)
    assert cli("index", run, "--backend", "hnsw", "--m", "8").returncode == 0
    data = (run / "index.faiss").read_bytes()
    (run / "index.faiss").write_bytes(data[: len(data) // 2])
    result = cli("similar", run, itemvec.open_data(item_run / "data").asins[0])
    assert result.returncode == 2 and "index.faiss" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_weights_memory_mapped_are_the_weights_read(item_run, tmp_path):
    from itemvec.models.base import load_model
    from itemvec.outputs import load_npz, save_npz

    rng = np.random.default_rng(3)
    arrays = {"big": rng.standard_normal((300, 64)).astype(np.float32), "fortran": np.asfortranarray(
        rng.standard_normal((200, 90))), "small": np.arange(5), "scalar": np.float64(2.5), "empty": np.zeros((0, 3))}
    save_npz(tmp_path / "w.npz", arrays)
    mapped, read = load_npz(tmp_path / "w.npz", mmap=True), load_npz(tmp_path / "w.npz")
    assert set(mapped) == set(read) == set(arrays)
    for key, value in arrays.items():
        assert np.array_equal(mapped[key], value) and mapped[key].dtype == np.asarray(value).dtype
    assert isinstance(mapped["big"].base, np.memmap) and isinstance(mapped["fortran"].base, np.memmap)
    assert mapped["fortran"].flags.f_contiguous and not isinstance(read["big"].base, np.memmap)
    mapped["big"][0, 0] = 99.0  # copy-on-write: the file is not changed
    assert load_npz(tmp_path / "w.npz")["big"][0, 0] == arrays["big"][0, 0]
    # a model loaded memory-mapped scores exactly as one read into memory
    plain, lazy = load_model(item_run / "run"), load_model(item_run / "run", mmap=True)
    queries = np.flatnonzero(plain.known_items_)[:5]
    np.testing.assert_array_equal(plain.score_all(queries), lazy.score_all(queries))
