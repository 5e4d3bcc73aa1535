"""One self-contained HTML page per evaluation, plus JSON and CSV for machines.

:func:`write_report` turns the results dict of :func:`ionfno.evaluation.evaluate_run` and its
figures into a report folder::

    REPORT_DIR/report.html        the page: tables, figures (embedded PNG), config, provenance
    REPORT_DIR/results.json       every number of the page (NaN written as null)
    REPORT_DIR/metrics.csv        long format: part, metric, variable, unit, value
    REPORT_DIR/worst_samples.csv  the worst test samples with their stimulus
    REPORT_DIR/figures/*.png      the figures as files

The page has no external resource (no script, font or stylesheet to fetch), so it opens
offline and can be attached to an e-mail. Every file is written atomically.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._io import atomic_path, write_json_atomic
from .metrics import summary_to_jsonable
from .study import STUDY_CITATION, STUDY_COLUMNS, study_results

__all__ = ["render_html", "write_report", "study_comparison_rows", "REPORT_FILES"]

REPORT_FILES = ("report.html", "results.json", "metrics.csv", "worst_samples.csv")

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em auto;max-width:1200px;
color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0;font-size:.85em}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:right}
th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}
figure{margin:1em 0}figcaption{font-size:.85em;color:#555}img{max-width:100%}
pre{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.8em}
.note{font-size:.85em;color:#555}
"""


def _pct(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{100 * float(x):.{digits}g} %"


def _num(x: Any, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    try:
        f = float(x)
    except (TypeError, ValueError):
        return html.escape(str(x))
    return f"{f:.{digits}g}" if math.isfinite(f) else "–"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, table_id: str = "") -> str:
    ident = f' id="{html.escape(table_id)}"' if table_id else ""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{c if isinstance(c, _Raw) else html.escape(str(c))}</td>" for c in row)
        + "</tr>"
        for row in rows
    )
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class _Raw(str):
    """A cell already escaped."""


def study_comparison_rows(
    model: str,
    per_variable: Mapping[str, float],
    overall: float,
    state_names: Sequence[str],
    label: str = "this run",
) -> tuple[list[str], list[list[str]]]:
    """Headers and rows of the side-by-side table: our study metric against the study's columns.

    Parameters
    ----------
    model : str
        Registry name (selects the study's numbers).
    per_variable : mapping of str to float
        Our relative L2 (normalised space) per variable, fractions.
    overall : float
        Our overall value (mean over variables).
    state_names : sequence of str
        Row order. ORd shows only the overall row and V (the study gives no per-variable values).
    label : str
        Column title of our value (e.g. the run's search space).
    """
    study = study_results(model)
    cols = [c for c in STUDY_COLUMNS if c in study]
    headers = ["variable", label] + [f"study {c}" for c in cols]
    rows = [
        ["overall (mean over variables)", _pct(overall)]
        + [("≈ " if study[c].get("approx") else "") + _pct(study[c].get("overall")) for c in cols]
    ]
    names = list(state_names)
    if len(names) > 8:  # ORd: the 41-row table is in the per-variable section
        names = names[:1]
    for n in names:
        rows.append(
            [n, _pct(per_variable.get(n))] + [_pct(study[c].get("per_variable", {}).get(n)) for c in cols]
        )
    return headers, rows


def _figure_html(png: bytes, caption: str, name: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure id="fig-{html.escape(name)}"><img alt="{html.escape(caption)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{html.escape(caption)}</figcaption></figure>'
    )


def _section(title: str, body: str, ident: str) -> str:
    return f'<section id="{ident}"><h2>{html.escape(title)}</h2>{body}</section>'


def render_html(results: Mapping[str, Any], figures: Mapping[str, tuple[bytes, str]]) -> str:
    """The report page as one HTML string (figures embedded as base64 PNG).

    Parameters
    ----------
    results : mapping
        The results dict of :func:`ionfno.evaluation.evaluate_run` (JSON-able).
    figures : mapping of str to (bytes, str)
        Figure name -> (PNG bytes, caption), in display order.
    """
    r = results
    model = str(r.get("model", ""))
    names = list(r.get("state_names", []))
    units = dict(zip(names, r.get("state_units", [""] * len(names)), strict=False))
    summary = r.get("metrics", {})
    allm = summary.get("all", {})
    parts: list[str] = []

    title = r.get("title") or f"ionfno evaluation: {model}"
    head = (
        f"<h1>{html.escape(title)}</h1><p class='note'>Run "
        f"<code>{html.escape(str(r.get('run_dir', '')))}</code> "
        f"({html.escape(str(r.get('checkpoint', '')))} checkpoint, epoch {_num(r.get('epoch'))}, "
        f"{_num(r.get('n_parameters'))} parameters) on "
        f"<code>{html.escape(str(r.get('data_path', '')))}</code>, "
        f"split {html.escape(str(r.get('split', '')))} ({_num(allm.get('n'))} samples). "
        f"Generated by ionfno {html.escape(str(r.get('ionfno_version', '')))} on "
        f"{html.escape(str(r.get('created', '')))}.</p>"
    )
    parts.append(head)

    # --- comparison with the study
    rel = allm.get("rel_l2", {})
    h, rows = study_comparison_rows(
        model,
        rel.get("per_variable", {}),
        rel.get("overall"),
        names,
        label=str(r.get("run_label", "this run")),
    )
    body = _table(h, rows, table_id="study-table") + (
        "<p class='note'>The study's metric: relative L2 error over time per sample and variable, in the "
        "point-wise normalised space (training-set mean and std per time index, eps = 1e-5), averaged over "
        f"variables, then samples. Study values: {html.escape(STUDY_CITATION)}. "
        "The study trained 1000 epochs on 3000 samples; a quick run is not expected to match them.</p>"
    )
    parts.append(_section("Test error next to the reference study", body, "study"))

    # --- per variable
    metric_cols = [
        ("rel_l2", "rel. L2"),
        ("rel_l1", "rel. L1"),
        ("rel_h1", "rel. H1"),
        ("rmse_over_range", "RMSE / range"),
        ("max_abs_over_range", "max |err| / range"),
    ]
    rows = []
    for n in names:
        row: list[Any] = [n]
        row += [_pct(allm.get(m, {}).get("per_variable", {}).get(n)) for m, _ in metric_cols]
        row += [
            _num(allm.get("rmse", {}).get("per_variable", {}).get(n)),
            _num(allm.get("max_abs", {}).get("per_variable", {}).get(n)),
            html.escape(units.get(n, "")),
            _num((r.get("ranges") or {}).get(n)),
        ]
        rows.append(row)
    rows.append(
        ["overall"] + [_pct(allm.get(m, {}).get("overall")) for m, _ in metric_cols] + ["", "", "", ""]
    )
    body = _table(
        ["variable"] + [c for _, c in metric_cols] + ["RMSE", "max |err|", "unit", "range"],
        rows,
        table_id="per-variable",
    ) + (
        "<p class='note'>rel. L2/L1/H1: normalised space (H1 with derivatives in t/T). "
        "RMSE and max |err| in the "
        "variable's unit; range = max - min of the true variable over the evaluated split.</p>"
    )
    parts.append(_section("Errors per variable (all test samples)", body, "per-variable-section"))

    # --- per part
    part_names = [p for p in summary if p != "all"]
    rows = []
    for p in [q for q in ("all", *part_names) if q in summary]:
        m = summary[p].get("rel_l2", {})
        rows.append(
            [
                p,
                summary[p].get("n"),
                _pct(m.get("overall")),
                _pct(m.get("median")),
                _pct(m.get("p95")),
                _pct(m.get("max")),
            ]
            + [_pct(m.get("per_variable", {}).get(n)) for n in names[:6]]
        )
    extra = names[:6]
    body = _table(
        ["part", "n", "mean", "median", "95th pct", "max"] + [f"{n}" for n in extra],
        rows,
        table_id="per-part",
    )
    body += "<p class='note'>Study metric per dataset part (per-sample value = mean over variables).</p>"
    parts.append(_section("Errors per dataset part", body, "per-part-section"))

    # --- biomarkers
    bm = r.get("biomarkers")
    if bm:
        c = bm.get("comparison", {})
        body = (
            f"<p>Fires/does not fire agreement: <b>{_pct(c.get('fire_agreement'))}</b> of {_num(c.get('n'))} "
            f"samples (both fire {_num(c.get('both_fire'))}, neither {_num(c.get('neither_fires'))}, "
            f"predicted only {_num(c.get('false_fire'))}, missed {_num(c.get('missed_fire'))}; "
            f"{_pct(c.get('true_fire_fraction'))} of the true traces fire; threshold "
            f"{_num(bm.get('threshold'))} {html.escape(units.get(names[0], '') if names else '')}).</p>"
        )
        rows = []
        for key, label, unit in [
            ("v_peak", "AP peak", units.get(names[0], "") if names else ""),
            ("t_upstroke", "upstroke time", r.get("time_unit", "ms")),
            ("apd50", "APD50", r.get("time_unit", "ms")),
            ("apd90", "APD90", r.get("time_unit", "ms")),
            ("dvdt_max", "max dV/dt", ""),
        ]:
            s = c.get(key, {})
            rows.append(
                [
                    label,
                    unit,
                    s.get("n"),
                    _num(s.get("mean_abs")),
                    _num(s.get("median_abs")),
                    _num(s.get("max_abs")),
                    _num(s.get("mean_signed")),
                    _pct(s.get("mean_rel")) if "mean_rel" in s else "–",
                    s.get("n_missing", "–"),
                ]
            )
        body += _table(
            [
                "biomarker",
                "unit",
                "n",
                "mean |err|",
                "median |err|",
                "max |err|",
                "bias",
                "mean rel.",
                "missing",
            ],
            rows,
            table_id="biomarkers",
        )
        body += f"<p class='note'>{html.escape(str(bm.get('definitions', '')))}</p>"
        parts.append(_section("Action-potential biomarkers", body, "biomarkers-section"))

    # --- worst samples
    worst = r.get("worst_samples") or []
    if worst:
        rows = [
            [
                w["rank"],
                w["index"],
                w["part"],
                _num(w["amplitude"]),
                _num(w["duration"]),
                _num(w["onset"]),
                _pct(w["rel_l2"]),
                html.escape(str(w.get("worst_variable", ""))),
            ]
            for w in worst
        ]
        body = _table(
            ["rank", "test index", "part", "amplitude", "duration", "onset", "rel. L2", "worst variable"],
            rows,
            table_id="worst",
        )
        parts.append(_section("Worst test samples", body, "worst-section"))

    # --- speed
    sp = r.get("speed")
    if sp:
        rows = [
            [
                k,
                _num(v.get("n_samples")),
                _num(v.get("seconds_total")),
                _num(v.get("seconds_per_sample")),
                _num(v.get("speedup_of_surrogate")),
            ]
            for k, v in sp.get("methods", {}).items()
        ]
        body = _table(
            ["method", "samples", "total [s]", "per sample [s]", "surrogate speed-up"], rows, table_id="speed"
        )
        body += f"<p class='note'>{html.escape(str(sp.get('note', '')))}</p>"
        parts.append(
            _section("Speed: surrogate against the solvers (same stimuli, same run)", body, "speed-section")
        )

    # --- out of distribution
    ood = r.get("ood")
    if ood:
        rows = []
        for kind, v in ood.get("cases", {}).items():
            rows.append(
                [
                    kind,
                    v.get("n"),
                    html.escape(str(v.get("description", ""))),
                    _pct(v.get("rel_l2")),
                    _pct(v.get("rel_l2_V")),
                    _num(v.get("rmse_V")),
                    _pct(v.get("fire_agreement")),
                    v.get("n_beats", ""),
                    _pct(v.get("beat_fire_agreement")) if v.get("n_beats") else "",
                    _num(v.get("apd90_mae")) if v.get("apd90_n") else "",
                ]
            )
        body = _table(
            [
                "stimulus",
                "n",
                "protocol",
                "rel. L2 (all vars)",
                "rel. L2 of V",
                "RMSE of V",
                "fires agreement",
                "beats",
                "beats: firing agreement",
                f"APD90 mean abs error [{html.escape(str(r.get('time_unit', 'ms')))}]",
            ],
            rows,
            table_id="ood",
        )
        rest = ood.get("restitution")
        if rest:
            body += (
                f"<p>S1-S2 restitution ({len(rest.get('coupling', []))} coupling intervals): APD90 of the S2 "
                f"beat, mean abs error {_num(rest.get('apd90_mae'))} {html.escape(str(r.get('time_unit', 'ms')))} "
                f"where both fire; S2 firing agreement {_pct(rest.get('fire_agreement'))}.</p>"
            )
        body += f"<p class='note'>{html.escape(str(ood.get('note', '')))}</p>"
        parts.append(_section("Out of distribution: the held-out benchmark", body, "ood-section"))

    # --- figures
    if figures:
        body = "".join(_figure_html(png, cap, name) for name, (png, cap) in figures.items())
        parts.append(_section("Figures", body, "figures"))

    # --- config and provenance
    prov = {k: r.get(k) for k in ("config", "data_provenance", "environment") if r.get(k) is not None}
    body = f"<pre>{html.escape(json.dumps(summary_to_jsonable(prov), indent=2, default=str))}</pre>"
    parts.append(_section("Configuration and data provenance", body, "provenance"))

    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        + "".join(parts)
        + "</body></html>\n"
    )


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if v is None else v) for k, v in row.items()})
    with atomic_path(path) as tmp:
        tmp.write_text(buf.getvalue())


def write_report(
    out_dir: str | os.PathLike,
    results: Mapping[str, Any],
    figures: Mapping[str, tuple[Any, str]],
    *,
    metric_rows: Sequence[Mapping[str, Any]] = (),
    dpi: int = 90,
) -> dict[str, Path]:
    """Write the report folder (layout in the module docstring).

    Parameters
    ----------
    out_dir : path-like
        Created if missing.
    results : mapping
        JSON-able results (NaN and inf become null).
    figures : mapping of str to (Figure or bytes, caption)
        Figures in display order; a matplotlib Figure is rendered at ``dpi`` and closed.
    metric_rows : sequence of dict
        Long-format metric rows (:meth:`ErrorTable.rows`) for ``metrics.csv``.

    Returns
    -------
    dict of str to Path
        The files written, by name.
    """
    from .plots import figure_to_png

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    pngs: dict[str, tuple[bytes, str]] = {}
    written: dict[str, Path] = {}
    for name, (fig, caption) in figures.items():
        png = fig if isinstance(fig, bytes) else figure_to_png(fig, dpi=dpi)
        pngs[name] = (png, caption)
        p = out / "figures" / f"{name}.png"
        with atomic_path(p) as tmp:
            tmp.write_bytes(png)
        written[f"figures/{name}.png"] = p
    clean = summary_to_jsonable(dict(results) | {"figures": list(pngs)})
    write_json_atomic(out / "results.json", clean)
    written["results.json"] = out / "results.json"
    _write_csv(out / "metrics.csv", metric_rows)
    written["metrics.csv"] = out / "metrics.csv"
    _write_csv(out / "worst_samples.csv", list(results.get("worst_samples") or []))
    written["worst_samples.csv"] = out / "worst_samples.csv"
    page = render_html(clean, pngs)
    with atomic_path(out / "report.html") as tmp:
        tmp.write_text(page, encoding="utf-8")
    written["report.html"] = out / "report.html"
    return written
