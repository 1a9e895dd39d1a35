"""``itemvec serve``: the runs of a report (or single runs) behind an HTTP API and one page.

Every model is loaded once at start, with the run's index where `itemvec index` built one (the exact scan
otherwise). Endpoints (JSON; OpenAPI at ``/docs``):

- ``GET /v1/models``: names, kinds, the headline figures of each run's metrics.json;
- ``GET /v1/items/{id}``: an item's metadata; ``GET /v1/search?q=``: items by id or title words;
- ``GET /v1/items/{id}/similar?model=&k=&exclude_known=&category=&brand=``: every model's (or one model's)
  top-k, the query left out, optionally its known partners (item-item) too;
- ``GET /v1/users/{id}``, ``GET /v1/users/{id}/recommendations?model=&k=``: a user's rated items, and each
  model's top-k with those left out (ratings data);
- ``POST /v1/recommendations`` ``{"items": [...], "k": 10, "model": null}``: for a visitor with no account,
  by fold-in: least squares for a user-item factor model, the basket's mean query vector for an item-item
  embedding, the basket's mean similarity row otherwise;
- ``GET /healthz``; ``/``: the page.

Unknown ids and models are 404 naming them, malformed parameters 422; no answer carries a traceback.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from itemvec.errors import InputError
from itemvec.index import Neighbours
from itemvec.models.base import top_k
from itemvec.parallel import one_blas_thread
from itemvec.runs import open_run, run_neighbours
from itemvec.serve.catalogue import Catalogue

MAX_K = 1000


class NotFound(LookupError):
    """An unknown item, user or model: 404."""


class BadRequest(ValueError):
    """A request that names nothing unknown but cannot be answered as asked: 422."""
HEADLINE = ("auc", "auc_degree", "recall_at_10", "ndcg_at_10", "rmse", "auc_per_user", "train_seconds")
FOLD_IN_L2 = 0.1


@dataclass
class Served:
    name: str
    run_dir: Path
    model: Any  # a fitted itemvec Model of either kind
    neighbours: Neighbours
    metrics: dict


def run_dirs(paths: list[Path]) -> list[Path]:
    """The finished runs of each REPORT_DIR (its runs/ folder) or RUN_DIR given."""
    found = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise InputError(f"{path}: no such report or run folder")
        if (path / "model.json").is_file():
            found.append(path)
        elif (path / "runs").is_dir():
            runs = sorted(p for p in (path / "runs").iterdir() if (p / "train.json").is_file())
            if not runs:
                raise InputError(f"{path}: the report holds no finished run")
            found += runs
        else:
            raise InputError(f"{path}: neither a REPORT_DIR (no runs/) nor a RUN_DIR (no model.json)")
    return found


def load_models(paths: list[Path]) -> tuple[Catalogue, list[Served]]:
    served: list[Served] = []
    data = None
    for run_dir in run_dirs(paths):
        model, run_data, _ = open_run(run_dir, mmap=True)
        if data is None:
            data = run_data
        elif run_data.fingerprint != data.fingerprint:
            raise InputError(f"{run_dir} was trained on {run_data.path}, the others on {data.path}; serve the "
                             "runs of one DATA_DIR at a time")
        metrics_path = run_dir / "metrics.json"
        metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
        headline = {key: metrics[key] for key in HEADLINE if isinstance(metrics.get(key), int | float)}
        name = run_dir.name
        if any(s.name == name for s in served):
            name = f"{run_dir.parent.name}/{run_dir.name}"
        served.append(Served(name, run_dir, model, run_neighbours(run_dir, model), headline))
    assert data is not None
    return Catalogue(data), served


class Service:
    """The loaded models and catalogue, and the answers the endpoints give."""

    def __init__(self, catalogue: Catalogue, served: list[Served]) -> None:
        self.catalogue = catalogue
        self.served = {s.name: s for s in served}

    def models(self, name: str | None) -> list[Served]:
        if name is None:
            return list(self.served.values())
        if name not in self.served:
            raise NotFound(f"unknown model {name!r}; served: {', '.join(self.served)}")
        return [self.served[name]]

    def item_index(self, item: str) -> int:
        i = self.catalogue.index.get(item)
        if i is None:
            raise NotFound(f"unknown item id {item!r}")
        return i

    def user_index(self, user: str) -> int:
        i = self.catalogue.user_index.get(user)
        if i is None:
            raise NotFound(f"unknown user id {user!r}" if self.catalogue.kind == "ratings"
                           else "this catalogue has no users (item-item data)")
        return i

    def _results(self, ids: np.ndarray, scores: np.ndarray) -> list[dict]:
        return [self.catalogue.item(int(i), float(s)) for i, s in zip(ids, scores) if i >= 0]

    def similar(self, item: str, model: str | None, k: int, exclude_known: bool, category: str | None,
                brand: str | None) -> dict:
        i = self.item_index(item)
        allowed = self.catalogue.filter_mask(category=category, brand=brand)
        exclude = self.catalogue.known_partners(i) if exclude_known else None
        out = {}
        for s in self.models(model):
            ids, scores = s.neighbours.similar(i, k, allowed, exclude)
            out[s.name] = {"seen_in_training": bool(s.model.known_items_[i]), "index": s.neighbours.uses_index,
                           "results": self._results(ids, scores)}
        return {"item": self.catalogue.item(i), "k": k, "models": out}

    def user(self, user: str) -> dict:
        u = self.user_index(user)
        return {"id": user, "rated": [self.catalogue.item(int(i)) for i in self.catalogue.seen_items(u)]}

    def recommend(self, user: str, model: str | None, k: int) -> dict:
        u = self.user_index(user)
        seen = self.catalogue.seen_items(u)
        out = {}
        for s in self.models(model):
            if s.model.data_kind != "ratings":
                continue
            ids, scores = s.neighbours.recommend(u, k, exclude=seen)
            out[s.name] = {"results": self._results(ids, scores)}
        return {"user": user, "k": k, "models": out}

    def basket(self, items: list[str], model: str | None, k: int) -> dict:
        if not items:
            raise BadRequest("items: give at least one item id")
        basket = np.array([self.item_index(item) for item in items], dtype=np.int64)
        allowed = np.ones(self.catalogue.n_items, dtype=bool)
        allowed[basket] = False
        out = {}
        for s in self.models(model):
            scores, method = self._fold_in(s, basket)
            scores = np.where(allowed & np.isfinite(scores), scores, np.nan)
            ids, values = top_k(scores[None, :], k)
            out[s.name] = {"method": method, "results": self._results(ids[0], values[0])}
        return {"items": items, "k": k, "models": out}

    def _fold_in(self, s: Served, basket: np.ndarray) -> tuple[np.ndarray, str]:
        model = s.model
        known = basket[model.known_items_[basket]]
        n = self.catalogue.n_items
        if len(known) == 0:
            return np.full(n, np.nan), "none of the basket's items was learned"
        if getattr(model, "has_embedding", False):
            emb = model.embedding()
            if model.data_kind == "ratings" and emb.user_vectors is not None:
                # least squares: the user vector p that best gives the basket's items a liked score t,
                # min_p sum_i (p·v_i + b_i + g - t)^2 + l2 |p|^2; t is the top of the rating scale for an
                # explicit model, 1 (a positive) for an implicit one
                v = emb.item_vectors[known].astype(np.float64)
                liked = float(model.scale_[1]) if getattr(model, "kind", "") == "explicit" else 1.0
                target = liked - emb.global_bias - (emb.item_bias[known] if emb.item_bias is not None else 0.0)
                p = np.linalg.solve(v.T @ v + FOLD_IN_L2 * np.eye(v.shape[1]), v.T @ target)
                scores = emb.item_vectors.astype(np.float64) @ p
                if emb.item_bias is not None:
                    scores = scores + emb.item_bias
                scores[~model.known_items_] = np.nan
                return scores, "least-squares fold-in"
            space = s.neighbours.space("similar")  # the item-item rule as one inner product (itemvec.index)
            query = space.queries[known].astype(np.float64).mean(axis=0)
            scores = space.keys.astype(np.float64) @ query + space.offset[known].mean()
            scores[~model.known_items_] = np.nan
            return scores, "mean vector of the basket"
        rows = model._similar_scores(known).astype(np.float64)
        finite = np.isfinite(rows)
        counts = finite.sum(axis=0)
        mean = np.where(finite, rows, 0.0).sum(axis=0) / np.maximum(counts, 1)
        return np.where(counts > 0, mean, np.nan), "mean similarity to the basket"


def create_app(service: Service):
    """The FastAPI application over a loaded ``Service``."""
    from fastapi import Body, FastAPI, Query, Request
    from fastapi.responses import HTMLResponse, JSONResponse

    app = FastAPI(title="itemvec", version="1", summary="Item recommendations from the models itemvec compared")

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc.args[0]) if exc.args else "not found"}, status_code=404)

    @app.exception_handler(BadRequest)
    async def unprocessable(request: Request, exc: BadRequest) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}"}, status_code=500)

    K = Query(10, ge=1, le=MAX_K, description="How many results per model.")

    @app.get("/healthz")
    def healthz() -> dict:
        return {"status": "ok", "models": len(service.served), "items": service.catalogue.n_items}

    @app.get("/v1/models")
    def models() -> dict:
        return {"kind": service.catalogue.kind, "models": [
            {"name": s.name, "model": s.model.name, "kind": s.model.data_kind, "index": s.neighbours.uses_index,
             "metrics": s.metrics} for s in service.served.values()]}

    @app.get("/v1/search")
    def search(q: str = Query(..., min_length=1, max_length=200), limit: int = Query(20, ge=1, le=100)) -> dict:
        return {"query": q, "results": service.catalogue.search(q, limit)}

    @app.get("/v1/items/{item_id}")
    def item(item_id: str) -> dict:
        return service.catalogue.item(service.item_index(item_id))

    @app.get("/v1/items/{item_id}/similar")
    def similar(item_id: str, model: str | None = None, k: int = K, exclude_known: bool = False,
                category: str | None = None, brand: str | None = None) -> dict:
        return service.similar(item_id, model, k, exclude_known, category, brand)

    @app.get("/v1/users/{user_id}")
    def user(user_id: str) -> dict:
        return service.user(user_id)

    @app.get("/v1/users/{user_id}/recommendations")
    def recommendations(user_id: str, model: str | None = None, k: int = K) -> dict:
        return service.recommend(user_id, model, k)

    @app.post("/v1/recommendations")
    def basket(items: list[str] = Body(..., embed=True, max_length=1000), k: int = Body(10, ge=1, le=MAX_K),
               model: str | None = Body(None)) -> dict:
        return service.basket(items, model, k)

    page = resources.files("itemvec.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    return app


def serve(paths: list[Path], host: str = "127.0.0.1", port: int = 8000, log=print) -> None:
    """Load the runs and serve them until interrupted."""
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise InputError("serving needs the serve extra: pip install 'itemvec[serve]'") from None
    catalogue, served = load_models(paths)
    if any(s.neighbours.uses_index for s in served):
        import faiss

        faiss.omp_set_num_threads(1)  # one query per search: worker threads would only spin on the cores
    # Likewise one BLAS thread: an exact scan is a (1 × dim) @ (dim × items) product per request, the requests
    # already run side by side on the server's threads, and OpenBLAS's own threads, called from many at once,
    # took turns and spun (the demo report's mf-seq alone: 16.9 -> 116-146 answers a second at 16 clients).
    one_blas_thread()
    for s in served:
        s.neighbours.warm()  # the query and key vectors made now, not on the first request
    app = create_app(Service(catalogue, served))
    # The socket is bound here, before saying where the service is: a port in use is one line and exit 2.
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(2048)  # connections made once the banner is out wait in the backlog, none is refused
    except OSError as error:
        listener.close()
        raise InputError(f"{host}:{port}: cannot listen there ({error.strerror or error})") from None
    for s in served:
        log(f"{s.name}: {s.model.name} ({'index' if s.neighbours.uses_index else 'exact scan'})")
    models = f"{len(served)} model{'s' if len(served) != 1 else ''}"
    log(f"serving {models} of {catalogue.n_items:,} items on http://{host}:{port}/ (API docs at /docs)")
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[listener])
