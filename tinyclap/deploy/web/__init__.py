"""Zero-shot classification in the browser: a static page for an exported folder.

``tinyclap export STUDENT --out DIR --web`` (or ``tinyclap web DIR`` for a folder
already exported) writes ``DIR/web/``: the page (``static/``: index.html, the JS
modules, style.css), onnxruntime-web's wasm build (:mod:`.ortweb`), and the
model (:mod:`.site`: the student and text student graphs, the label tables, the
tokenizer as JSON (:mod:`.tokenizer`), the frontend settings and thresholds).
:mod:`.browser` drives headless Chromium for the tests and the benchmark.

Example
-------
>>> from tinyclap.deploy.web.site import build_site
>>> build_site("exported/demo")["out"]  # doctest: +SKIP
'exported/demo/web'
"""
