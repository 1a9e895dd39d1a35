"""The HTTP API through FastAPI's test client (every endpoint, every error code, filters, k bounds, basket
fold-in) and the page in real headless Chromium (Debian's chromium and chromedriver, driven by selenium)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_ratings_cli import prepare_planted_ratings  # noqa: E402

import itemvec  # noqa: E402

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from itemvec.serve.app import Service, create_app, load_models  # noqa: E402

K = 5


@pytest.fixture(scope="module")
def item_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    itemvec.synth_amazon(root / "cat.json.gz", products=1200, seed=5, progress=False)
    itemvec.prepare_amazon([root / "cat.json.gz"], root / "data", seed=5, progress=False, log=lambda line: None)
    for name in ("popularity", "mf-bias"):
        itemvec.train_run(name, root / "data", root / "report" / "runs" / name,
                          sets={"epochs": "2", "dim": "16", "threads": "1"} if name != "popularity" else None,
                          progress=False)
    itemvec.runs.index_run(root / "report" / "runs" / "mf-bias")
    return root


@pytest.fixture(scope="module")
def client(item_runs):
    catalogue, served = load_models([item_runs / "report"])
    return TestClient(create_app(Service(catalogue, served)))


@pytest.fixture(scope="module")
def user_client(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve-users")
    prepare_planted_ratings(root)
    runs = []
    for name in ("bpr", "mf-explicit-bias", "dense"):
        sets = {"dim": "8", "threads": "1", **({} if name == "mf-explicit-bias" else {"epochs": "3"})}
        itemvec.train_run(name, root / "data", root / name, sets=sets, progress=False)
        runs.append(root / name)
    catalogue, served = load_models(runs)
    return TestClient(create_app(Service(catalogue, served)))


def an_item(client, learned=True) -> str:
    body = client.get("/v1/search", params={"q": "a"}).json()
    return body["results"][0]["id"]


def test_models_health_and_docs(client):
    assert client.get("/healthz").json()["status"] == "ok"
    body = client.get("/v1/models").json()
    assert body["kind"] == "pairs"
    by_name = {m["name"]: m for m in body["models"]}
    assert set(by_name) == {"popularity", "mf-bias"}
    assert by_name["mf-bias"]["index"] is True and by_name["popularity"]["index"] is False
    assert 0.0 < by_name["mf-bias"]["metrics"]["auc"] <= 1.0
    assert client.get("/docs").status_code == 200
    assert "/v1/items/{item_id}/similar" in client.get("/openapi.json").json()["paths"]


def test_search_and_item(client, item_runs):
    data = itemvec.open_data(item_runs / "data")
    titles = data.products()["title"].to_pylist()
    i = next(j for j, t in enumerate(titles) if t)
    asin, title = data.asins[i], titles[i]
    hits = client.get("/v1/search", params={"q": asin}).json()["results"]
    assert hits[0]["id"] == asin  # an exact id first
    word = title.split()[0]
    assert all(word.lower() in (h["title"] or "").lower() or word.lower() in h["id"].lower()
               for h in client.get("/v1/search", params={"q": word}).json()["results"])
    item = client.get(f"/v1/items/{asin}").json()
    assert item["id"] == asin and item["title"] == title
    assert client.get("/v1/items/NOPE").status_code == 404 and "NOPE" in client.get("/v1/items/NOPE").text


def test_similar_every_model_k_and_the_same_answer_as_the_library(client, item_runs):
    model, data, _ = itemvec.open_run(item_runs / "report" / "runs" / "mf-bias")
    learned = np.flatnonzero(model.known_items_)
    asin = data.asins[learned[3]]
    body = client.get(f"/v1/items/{asin}/similar", params={"k": K}).json()
    assert set(body["models"]) == {"popularity", "mf-bias"}
    for answer in body["models"].values():
        assert len(answer["results"]) == K and asin not in [r["id"] for r in answer["results"]]
    expected = itemvec.similar(item_runs / "report" / "runs" / "mf-bias", [asin], K)[0]["similar"]
    assert [r["id"] for r in body["models"]["mf-bias"]["results"]] == [n["asin"] for n in expected]
    one = client.get(f"/v1/items/{asin}/similar", params={"k": 3, "model": "popularity"}).json()
    assert list(one["models"]) == ["popularity"] and len(one["models"]["popularity"]["results"]) == 3


def test_similar_filters(client, item_runs):
    model, data, _ = itemvec.open_run(item_runs / "report" / "runs" / "mf-bias")
    catalogue, _ = load_models([item_runs / "report" / "runs" / "mf-bias"])
    learned = np.flatnonzero(model.known_items_)
    i = int(next(j for j in learned if len(catalogue.known_partners(j)) >= 2))
    asin = data.asins[i]
    partners = {data.asins[j] for j in catalogue.known_partners(i)}
    body = client.get(f"/v1/items/{asin}/similar", params={"k": K, "exclude_known": True}).json()
    for answer in body["models"].values():
        assert len(answer["results"]) == K and not partners & {r["id"] for r in answer["results"]}
    i = int(next(j for j in learned if catalogue.categories[j] and (
        catalogue.filter_mask(category=catalogue.categories[j]) & model.known_items_).sum() > K + 1))
    asin, category = data.asins[i], catalogue.categories[i]
    body = client.get(f"/v1/items/{asin}/similar", params={"k": K, "category": category}).json()
    for answer in body["models"].values():
        assert len(answer["results"]) == K and all(category.lower() in catalogue.category_sets[catalogue.index[r["id"]]]
                                         for r in answer["results"])
    brand = catalogue.brands[i]
    body = client.get(f"/v1/items/{asin}/similar", params={"k": K, "brand": brand, "model": "mf-bias"}).json()
    assert all(r["brand"] == brand for r in body["models"]["mf-bias"]["results"])


def test_errors_are_json_without_a_traceback(client):
    asin = an_item(client)
    for path, params, code in ((f"/v1/items/{asin}/similar", {"k": 0}, 422),
                               (f"/v1/items/{asin}/similar", {"k": 1001}, 422),
                               (f"/v1/items/{asin}/similar", {"k": "ten"}, 422),
                               (f"/v1/items/{asin}/similar", {"model": "nope"}, 404),
                               ("/v1/items/NOPE/similar", {}, 404),
                               ("/v1/search", {}, 422),
                               ("/v1/users/1/recommendations", {}, 404)):
        response = client.get(path, params=params)
        assert response.status_code == code, (path, params, response.text)
        assert "Traceback" not in response.text and "detail" in response.json()
    assert client.post("/v1/recommendations", json={"items": []}).status_code == 422
    assert client.post("/v1/recommendations", json={"items": ["NOPE"]}).status_code == 404
    assert client.post("/v1/recommendations", json={"k": 3}).status_code == 422


def test_a_basket_for_a_visitor(client, item_runs):
    model, data, _ = itemvec.open_run(item_runs / "report" / "runs" / "mf-bias")
    learned = np.flatnonzero(model.known_items_)
    basket = [data.asins[learned[0]], data.asins[learned[1]]]
    body = client.post("/v1/recommendations", json={"items": basket, "k": K}).json()
    for answer in body["models"].values():
        ids = [r["id"] for r in answer["results"]]
        assert len(ids) == K and not set(basket) & set(ids)
    assert body["models"]["mf-bias"]["method"] == "mean vector of the basket"
    # one item's basket is that item's own neighbours, by the model's rule (the mean of one vector is itself)
    one = client.post("/v1/recommendations", json={"items": basket[:1], "k": K, "model": "mf-bias"}).json()
    similar = client.get(f"/v1/items/{basket[0]}/similar", params={"k": K, "model": "mf-bias"}).json()
    assert [r["id"] for r in one["models"]["mf-bias"]["results"]] == \
        [r["id"] for r in similar["models"]["mf-bias"]["results"]]


def test_users_recommendations_and_least_squares_fold_in(user_client):
    models = user_client.get("/v1/models").json()
    assert models["kind"] == "ratings" and {m["name"] for m in models["models"]} == {"bpr", "mf-explicit-bias",
                                                                                   "dense"}
    user = user_client.get("/v1/users/1").json()
    rated = {r["id"] for r in user["rated"]}
    assert rated
    body = user_client.get("/v1/users/1/recommendations", params={"k": K}).json()
    for answer in body["models"].values():
        ids = [r["id"] for r in answer["results"]]
        assert len(ids) == K and not rated & set(ids)
    assert user_client.get("/v1/users/99999/recommendations").status_code == 404
    # Fold-in of a visitor who liked group A's movies (items 1-20): the factor models recommend group A.
    body = user_client.post("/v1/recommendations", json={"items": ["1", "2", "3", "4", "5", "6"], "k": 5}).json()
    assert body["models"]["bpr"]["method"] == "least-squares fold-in"
    assert body["models"]["dense"]["method"] == "mean similarity to the basket"
    for name in ("bpr", "mf-explicit-bias"):
        ids = [int(r["id"]) for r in body["models"][name]["results"]]
        assert sum(i <= 20 for i in ids) >= 4, (name, ids)


def test_the_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "<script>" in page.text and "http" not in page.text.split("<script>")[1]


# ---------------------------------------------------------------- the page in a real browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("CI"):
            pytest.fail("CI must have Debian's chromium and chromium-driver (make browser installs them)")
        pytest.skip("no chromium/chromedriver here (make browser installs them)")
    from selenium.webdriver.chrome.service import Service as DriverService

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"):
        options.add_argument(flag)
    session = webdriver.Chrome(service=DriverService(executable_path=driver), options=options)
    yield session
    session.quit()


def test_the_page_in_headless_chromium(item_runs, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "itemvec.cli", "serve", item_runs / "report", "--port",
                               str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        import urllib.request

        for line in server.stderr:  # the banner says the service is ready: the first request is answered
            if line.startswith("serving "):
                break
        else:
            pytest.fail(f"the service did not start (exit {server.wait()})")
        assert json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10))["status"] == "ok"
        wait = WebDriverWait(browser, 20)
        browser.get(f"http://127.0.0.1:{port}/")
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#models tbody tr")) == 2)
        model, data, _ = itemvec.open_run(item_runs / "report" / "runs" / "mf-bias")
        titles = data.products()["title"].to_pylist()
        title = next(titles[i] for i in np.flatnonzero(model.known_items_) if titles[i])
        k = browser.find_element(By.ID, "k")
        k.clear()
        k.send_keys(str(K))
        browser.find_element(By.ID, "search").send_keys(title)
        hit = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#hits li")))
        hit.click()
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, ".column")) == 2)
        for column in browser.find_elements(By.CSS_SELECTOR, ".column"):
            assert len(column.find_elements(By.CSS_SELECTOR, ".result")) == K, column.text
        assert title in browser.find_element(By.ID, "query").text
        # click a result: the page pivots to it
        target = browser.find_elements(By.CSS_SELECTOR, ".column[data-model='mf-bias'] .result")[0]
        target_id = target.get_attribute("data-id")
        target.click()
        wait.until(lambda b: target_id in b.find_element(By.ID, "query").text)
        wait.until(lambda b: all(len(c.find_elements(By.CSS_SELECTOR, ".result")) == K
                                 for c in b.find_elements(By.CSS_SELECTOR, ".column")))
        assert browser.find_element(By.ID, "error").text == ""
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_a_port_in_use_is_one_line_and_exit_2(item_runs):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "itemvec.cli", "serve", item_runs / "report", "--port",
                                 str(port)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1].startswith(
        f"error: 127.0.0.1:{port}: cannot listen there"), result.stderr
    assert "serving" not in result.stderr


def test_the_service_keeps_one_blas_thread():
    """`serve` limits BLAS to one thread for the process (concurrent requests' scans made OpenBLAS's threads
    take turns and spin); the limiter restores the previous counts."""
    from threadpoolctl import threadpool_info

    from itemvec.parallel import one_blas_thread

    before = [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]
    limiter = one_blas_thread()
    try:
        assert [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"] == [1] * len(before)
    finally:
        limiter.restore_original_limits()
    assert [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"] == before
