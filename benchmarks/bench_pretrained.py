"""Re-measure the pretrained surrogates' model cards on freshly generated data.

For each pretrained surrogate (all installed ones, or the names given), generate a new test
set from the card's own mixture, grid and solver tolerance with another seed (so none of its
samples was seen in training, validation or the card's test split), predict it, and score it
in the study's metric with the surrogate's training statistics (the point-wise output
normaliser it ships). Printed per surrogate: the card's test error and the fresh one, overall,
per mixture part and for the variables that differ most, plus the firing agreement.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_pretrained.py [NAME ...] [--n 375] [--seed 2026] [--workers 1]

The fresh error differs from the card's by sampling noise (375 samples: a few tenths of a
point for ORd/HH); a larger gap means the shipped file is not the card's run, or the data
generation changed since the card was written.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def fresh_test_set(card: dict, out: Path, *, n: int, seed: int, workers: int) -> Path:
    """Generate ``n`` test samples from the card's mixture with ``seed`` (train/val: 2 each)."""
    from ionfno.cli import main

    d = card["data"]
    args = [
        "generate",
        card["model"],
        "--n-train",
        "2",
        "--n-val",
        "2",
        "--n-test",
        str(n),
        "--seed",
        str(seed),
        "--t-end",
        repr(d["grid"]["t_end"]),
        "--n-points",
        str(d["grid"]["n_points_stored"]),
        "--workers",
        str(workers),
        "--no-progress",
        "--out",
        str(out),
    ]
    if d.get("mixture"):
        args += ["--mixture", d["mixture"]]
    if (d.get("solver") or {}).get("rtol") is not None:
        args += ["--rtol", repr(d["solver"]["rtol"])]
    if main(args) != 0:
        raise RuntimeError(f"ionfno {' '.join(args)} failed")
    return out


def remeasure(name: str, *, n: int, seed: int, workers: int) -> dict:
    """The card's test error and the one on fresh data, overall, per part and per variable."""
    from ionfno.data.biomarkers import firing_threshold
    from ionfno.data.encoding import stored_stimulus
    from ionfno.data.storage import read_split
    from ionfno.evaluation.biomarkers import compare_biomarkers, compute_biomarkers
    from ionfno.evaluation.metrics import compute_errors
    from ionfno.pretrained import load_card
    from ionfno.surrogate import Surrogate

    card = load_card(name)
    sur = Surrogate.load(name)
    stats = sur.output_statistics()
    if stats is None:
        raise ValueError(
            f"{name}: trained with the per-channel normaliser; the study's metric needs the "
            "point-wise training statistics"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = fresh_test_set(card, Path(tmp) / "fresh.h5", n=n, seed=seed, workers=workers)
        d = read_split(path, "test", dtype=np.float64, time_stride=int(sur.info["subsample"]))
    stim = stored_stimulus(d)  # pulse trains, S1-S2 pairs and waveforms of a general mixture too
    pred = sur.predict_array(d["i_app"] if sur.input_encoding == "point" else sur.encode(stim))
    table = compute_errors(
        pred, d["states"], mean=stats[0], std=stats[1], state_names=sur.state_names, parts=d["part"]
    )
    s = table.summary()
    iv = sur.state_names.index("V")
    thr = firing_threshold(sur.model_name)
    bm = compare_biomarkers(
        compute_biomarkers(d["states"][:, iv], sur.t, threshold=thr),
        compute_biomarkers(pred[:, iv], sur.t, threshold=thr),
    )
    return {"card": card, "fresh": s, "fire_agreement": bm["fire_agreement"], "n": int(pred.shape[0])}


def main() -> None:
    from ionfno.pretrained import list_pretrained

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="pretrained names (default: all installed)")
    ap.add_argument("--n", type=int, default=375, help="fresh test samples per surrogate (default 375)")
    ap.add_argument("--seed", type=int, default=2026, help="seed of the fresh data (default 2026)")
    ap.add_argument("--workers", type=int, default=1, help="generation workers (default 1)")
    args = ap.parse_args()
    names = args.names or list_pretrained()
    if not names:
        raise SystemExit("no pretrained surrogates installed")
    for name in names:
        r = remeasure(name, n=args.n, seed=args.seed, workers=args.workers)
        card, fresh = r["card"], r["fresh"]
        te = card["test_error"]
        card_bm = card["physical"]["biomarkers"].get("fire_agreement")
        print(
            f"\n{name} ({card['model']}, {card['files']['weights_dtype']} weights): study metric, card "
            f"{100 * te['overall']:.3f} % on {te['n']} test samples; fresh "
            f"{100 * fresh['all']['rel_l2']['overall']:.3f} % on {r['n']} new samples (seed {args.seed}); "
            f"firing agreement {100 * r['fire_agreement']:.1f} % (card "
            f"{'n/a' if card_bm is None else f'{100 * card_bm:.1f} %'})"
        )
        print(f"  {'part':<12}{'card':>10}{'fresh':>10}{'n fresh':>9}")
        for part, e in fresh.items():
            if part == "all":
                continue
            c = te["per_part"].get(part, {}).get("overall")
            shown = "-" if c is None else f"{100 * c:.3f}"
            print(f"  {part:<12}{shown:>10}{100 * e['rel_l2']['overall']:>10.3f}{e['n']:>9}")
        pv_card, pv_fresh = te["per_variable"], fresh["all"]["rel_l2"]["per_variable"]
        worst = sorted(pv_fresh, key=lambda v: -abs(pv_fresh[v] - pv_card.get(v, np.nan)))[:5]
        print(f"  {'variable':<12}{'card':>10}{'fresh':>10}   (largest differences)")
        for v in worst:
            print(f"  {v:<12}{100 * pv_card[v]:>10.3f}{100 * pv_fresh[v]:>10.3f}")


if __name__ == "__main__":
    main()
