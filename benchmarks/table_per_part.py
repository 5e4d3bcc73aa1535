"""A Markdown table of one error metric per state variable and dataset part, from a report.

Reads ``metrics.csv`` of an ``ionfno evaluate`` report folder (rows ``part, n, metric,
variable, unit, value``) and prints one row per state and one column per part, plus the
overall column, in percent for relative metrics. RESULTS.md's per-variable, per-part tables
come from this script.

    python benchmarks/table_per_part.py runs/ord-c2h-12k-eval --metric rel_l2
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="report folder written by `ionfno evaluate`")
    ap.add_argument("--metric", default="rel_l2", help="rel_l2 (default), rel_l1, rmse, rmse_over_range, ...")
    args = ap.parse_args()

    rows = list(csv.DictReader(open(args.report / "metrics.csv", newline="")))
    res = json.loads((args.report / "results.json").read_text())
    states = list(res["state_names"])
    table: dict[tuple[str, str], float] = {}
    counts: dict[str, int] = {}
    for r in rows:
        if r["metric"] != args.metric or r["variable"] not in states:
            continue
        table[(r["part"], r["variable"])] = float(r["value"])
        counts[r["part"]] = int(r["n"])
    if not table:
        metrics = sorted({r["metric"] for r in rows})
        raise SystemExit(f"no rows for metric {args.metric!r} in {args.report}/metrics.csv; found {metrics}")
    parts = ["all"] + sorted(p for p in counts if p != "all")
    relative = args.metric.startswith("rel_") or args.metric.endswith("_over_range")
    scale, unit = (100.0, " (%)") if relative else (1.0, "")
    print(f"| state{unit} | " + " | ".join(f"{p} (n={counts[p]})" for p in parts) + " |")
    print("|---|" + "---:|" * len(parts))
    for s in states:
        cells = [table.get((p, s)) for p in parts]
        fmt = "{:.2f}" if relative else "{:.3g}"
        print(f"| {s} | " + " | ".join("" if v is None else fmt.format(scale * v) for v in cells) + " |")
    if relative:
        overall = res["metrics"]
        means = []
        for p in parts:
            m = overall.get(p, {}).get(args.metric, {})
            v = m.get("overall") if isinstance(m, dict) else None
            means.append("" if v is None else f"**{scale * v:.2f}**")
        print("| **mean over states** | " + " | ".join(means) + " |")


if __name__ == "__main__":
    main()
