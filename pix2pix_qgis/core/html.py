"""Self-contained HTML pages (images inlined) for QGIS's results viewer and for people.

One file each, no external assets, so a report can be mailed or archived beside its model.
These are the shared pieces; ``train.report`` and ``evaluate.report`` write the pages.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from .outputs import staged_file

STYLE = """<style>
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 90%; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; } td:first-child, th:first-child { text-align: left; }
tr.best { background: #e6f4e6; font-weight: bold; } img { max-width: 100%; border: 1px solid #ddd; }
p.warning { background: #fff4e0; border-left: 4px solid #e0a000; padding: 0.4em 0.8em; }
</style>"""


def html_number(value: Any) -> str:
    """A table cell's text: 4 significant digits for floats, a dash for None, escaped otherwise."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def html_table(rows: list[dict[str, Any]], columns: list[str], best: Any = None, key: str = "") -> str:
    """An HTML table of ``rows`` over ``columns``; the row whose ``key`` equals ``best`` is marked."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        marker = ' class="best"' if key and best is not None and row.get(key) == best else ""
        body.append(f"<tr{marker}>" + "".join(f"<td>{html_number(row.get(c))}</td>" for c in columns) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def html_image(png: bytes, alt: str) -> str:
    """An inline ``<img>`` of PNG bytes (a report stays one self-contained file); empty without bytes."""
    if not png:
        return ""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def write_html(path: str | Path, document: str) -> str:
    """Write ``document`` atomically to ``path``; returns the absolute path."""
    with staged_file(Path(path)) as staging:
        staging.write_text(document, encoding="utf-8")
    return str(Path(path).absolute())
