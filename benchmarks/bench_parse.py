"""Parsing throughput, single core: our 2014 reader against ast.literal_eval, and orjson against json,
over the same lines in the same run. Prints JSON.

    python benchmarks/bench_parse.py [--products 50000] [--file META.json.gz]
"""

from __future__ import annotations

import argparse
import ast
import json
import tempfile
import time
from pathlib import Path

from itemvec.data.amazon import normalise, parse_line, parse_python_literal
from itemvec.data.io import LineReader
from itemvec.data.synthetic import write_amazon_2014


def timed(fn, lines, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for line in lines:
            fn(line)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=50000)
    parser.add_argument("--file", type=Path, default=None, help="a real 2014-format file instead of synthetic")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file or Path(tmp) / "meta.json.gz"
        if args.file is None:
            write_amazon_2014(path, args.products, seed=0, progress=False)
        lines = [line for _, line in LineReader(path) if line.strip()]
    texts = [line.decode("utf-8") for line in lines]
    megabytes = sum(len(line) for line in lines) / 1e6
    t_ast = timed(ast.literal_eval, texts)
    t_ours = timed(parse_python_literal, lines)
    t_ours_full = timed(lambda line: parse_line(line, "2014"), lines)
    t_ast_full = timed(lambda text: normalise(ast.literal_eval(text)), texts)
    json_lines = [json.dumps(ast.literal_eval(t)).encode() for t in texts]
    t_json = timed(json.loads, json_lines)
    t_orjson_full = timed(lambda line: parse_line(line, "2018"), json_lines)
    import orjson

    t_orjson = timed(orjson.loads, json_lines)
    n = len(lines)
    print(json.dumps({
        "benchmark": "parse",
        "source": str(args.file) if args.file else f"synthetic 2014 catalogue, {args.products} products",
        "lines": n,
        "megabytes": round(megabytes, 1),
        "lines_per_second": {
            "ast.literal_eval": round(n / t_ast), "itemvec 2014 (pyjson5, literal_eval fallback)": round(n / t_ours),
            "ast.literal_eval + normalise": round(n / t_ast_full), "itemvec parse_line 2014": round(n / t_ours_full),
            "json.loads": round(n / t_json), "orjson.loads": round(n / t_orjson),
            "itemvec parse_line 2018": round(n / t_orjson_full),
        },
        "speedup_2014_vs_literal_eval": round(t_ast / t_ours, 2),
        "speedup_2014_vs_literal_eval_with_normalise": round(t_ast_full / t_ours_full, 2),
        "speedup_orjson_vs_json": round(t_json / t_orjson, 2),
    }, indent=2))


if __name__ == "__main__":
    main()
