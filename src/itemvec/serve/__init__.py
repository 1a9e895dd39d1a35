"""``itemvec serve``: the HTTP API (app.py), what it knows of a DATA_DIR (catalogue.py) and the page
(static/index.html, plain HTML and JavaScript shipped with the package: no build step, no CDN)."""
