"""Benchmark of the fake-review (虚假评价) detectors: `.venv/bin/python -m bench.bench_reviews`.

0. Chinese reviews (#20) on the Dianping dev file (6,887 reviews, labels from Dianping's filter):
   5-fold StratifiedGroupKFold by connected component of the user–IP graph, several split seeds. Each
   test fold is scored as a file of its own (behaviour computed over it alone); F1 at the threshold
   chosen inside the training fold. The model (text + star + user + IP), two of its parts (text + star,
   text only) and three baselines on the same folds: five stars ⇒ fake, character TF-IDF + LR, and
   the previous (version-3) model on Chinese (character NB-LR, label at 0.5). Targets: AUC ≥ 0.88,
   F1 ≥ 0.72.
1. Text classifier on the Ott et al. deceptive-opinion dev file (1,280 English hotel reviews,
   16 hotels), 5-fold GroupKFold **by hotel**, on several assignments of hotels to folds (split
   seeds: `none` is GroupKFold's own deterministic assignment, an integer shuffles the hotels):
   - the honest figure: **nested** CV — inside each outer training fold, a 4-fold GroupKFold by
     hotel picks one of `R.TUNE_GRID` (single linear models and logit-averaging ensembles); the outer
     fold only scores that choice (what `train --tune` does);
   - the fixed default method (`R.DEFAULT_METHOD`). It was fixed after seeing nested-CV picks on
     this file, so its plain figure is *not* a nested estimate; it is printed beside the nested one;
   - the previous (version-2) default, a single NB-LR over char 1-4 + word 1-2 n-grams, for reference.
   Mean ± std accuracy over folds, per fold, mean over split seeds; out-of-fold calibration (Brier,
   log loss) and accuracy by polarity; time to train on all rows and to score them.
1b. The whole English model with its best-F1 threshold, StratifiedGroupKFold by hotel: accuracy at
   the chosen thresholds against 0.5 (the threshold must not cost the accuracy (1) measures).
2. Template detection (MinHash + LSH): recall of planted near-duplicate groups hidden among the
   dev reviews, false groups, and throughput on a larger synthetic corpus.

Published reference for (1): ~0.90 (Ott et al. 2011, n-gram SVM, 5-fold by hotel); RoBERTa 0.898.
Options: --parts dianping,ott,ott-threshold,templates chooses what runs; --dianping-seeds 0,1,2;
--quick skips the nested runs (the slow part: several minutes per seed on 2 cores);
--seeds none,0,1 the split seeds; --jobs N parallel folds.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from fanchaoxin.detect import reviews as R

REVIEWS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "reviews"
DATA = REVIEWS / "ott-deceptive-dev.csv"
DIANPING = REVIEWS / "dianping-dev.csv"
PARTS = ("dianping", "ott", "ott-threshold", "templates")


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.machine()}, "
        f"Python {platform.python_version()}, scikit-learn {sklearn.__version__}, numpy {np.__version__}"
    )


def report_cv(name: str, res: R.CVResult, polarity: list[str], seconds: float) -> None:
    folds = ", ".join(f"{a:.3f}" for a in res.accuracies)
    p = np.clip(res.oof_scores, 1e-6, 1 - 1e-6)
    brier = float(np.mean((p - res.y) ** 2))
    logloss = float(-np.mean(res.y * np.log(p) + (1 - res.y) * np.log(1 - p)))
    pred = (res.oof_scores >= 0.5).astype(int)
    pol = np.asarray(polarity)
    by_pol = ", ".join(f"{v} {np.mean(pred[pol == v] == res.y[pol == v]):.3f}" for v in sorted(set(polarity)))
    print(f"  {name}, split seed {res.seed}: accuracy {res.mean:.4f} ± {res.std:.4f} (folds {folds})")
    print(f"    pooled out-of-fold accuracy {np.mean(pred == res.y):.4f}; by polarity: {by_pol}")
    print(f"    out-of-fold Brier {brier:.4f}, log loss {logloss:.4f}; {seconds:.1f} s")


def seed_arg(text: str) -> list[int | None]:
    return [None if s.strip().lower() == "none" else int(s) for s in text.split(",") if s.strip()]


def bench_classifier(quick: bool, jobs: int, seeds: list[int | None]) -> None:
    cols = R.read_columns(DATA, ["text", "label", "hotel", "polarity"])
    texts, labels, hotels = cols["text"], cols["label"], cols["hotel"]
    print(f"\n[1] text classifier — {DATA.name}: {len(texts)} reviews, {len(set(hotels))} hotels")
    print(f"  5-fold GroupKFold by hotel (no hotel in both training and test folds); split seeds {seeds}")
    runs: list[tuple[str, dict]] = []
    if not quick:
        runs.append(
            (
                f"NESTED (method chosen from the {len(R.TUNE_GRID)}-point grid by inner 4-fold GroupKFold)",
                {"tune": True},
            )
        )
    runs.append((f"fixed default {R.DEFAULT_METHOD} (not a nested estimate)", {}))
    previous = R.Method.of(R.NB_CHAR_WORD)
    runs.append((f"previous default {previous} (reference)", {"method": previous}))
    summary = []
    for name, kw in runs:
        per_seed = []
        picks: Counter[str] = Counter()
        method = kw.pop("method", None)
        for seed in seeds:
            t = time.perf_counter()
            res = R.grouped_cv(
                texts, labels, hotels, "deceptive", n_splits=5, n_jobs=jobs, seed=seed, method=method, **kw
            )
            report_cv(name, res, cols["polarity"], time.perf_counter() - t)
            if kw.get("tune"):
                for i, m in enumerate(res.methods, start=1):
                    print(f"    outer fold {i}: inner CV chose {m}")
                picks.update(res.methods)
            per_seed.append(res)
        means = [r.mean for r in per_seed]
        all_folds = [a for r in per_seed for a in r.accuracies]
        line = (
            f"{name}: mean over {len(seeds)} split seed(s) {np.mean(means):.4f} "
            f"(per seed {', '.join(f'{m:.4f}' for m in means)}; sd over all {len(all_folds)} folds "
            f"{np.std(all_folds):.4f})"
        )
        print("  => " + line)
        if picks:
            print(
                "     picks over all outer folds: " + "; ".join(f"{n}× {m}" for m, n in picks.most_common())
            )
        summary.append(line)
    print("\n  summary:")
    for line in summary:
        print("   - " + line)

    t = time.perf_counter()
    model = R.train_model(texts, labels, "deceptive")
    t_train = time.perf_counter() - t
    t = time.perf_counter()
    model.score(texts)
    t_score = time.perf_counter() - t
    print(
        f"  train default on all {len(texts)} (one process): {t_train:.2f} s; "
        f"score {len(texts)}: {t_score:.3f} s ({len(texts) / t_score:,.0f} reviews/s)"
    )


def _baseline_folds(y: np.ndarray, groups: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return list(StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(groups, y, groups))


def _fold_metrics(
    y: np.ndarray, splits: list, scores: np.ndarray, thresholds: list[float]
) -> tuple[float, float]:
    aucs = [roc_auc_score(y[te], scores[te]) for _, te in splits]
    f1s = [f1_score(y[te], scores[te] >= t) for (_, te), t in zip(splits, thresholds, strict=True)]
    return float(np.mean(aucs)), float(np.mean(f1s))


def bench_dianping(seeds: list[int], jobs: int) -> None:
    """Chinese reviews: the whole model against the baselines, on the same grouped folds."""
    table, other = R.read_reviews(
        DIANPING, {"text": "text", "rating": "star", "user": "user", "ip": "ip", "label": "label"}
    )
    labels = other["label"]
    y, _ = R.encode_labels(labels, "+")
    groups = R.account_groups(table)
    assert groups is not None
    sizes = np.bincount(groups)
    print(
        f"\n[0] Chinese reviews — {DIANPING.name}: {len(table)} reviews, {y.mean():.1%} '+' (filtered by "
        f"Dianping), {len(sizes)} user–IP components (largest {sizes.max()} reviews)"
    )
    print("  5-fold StratifiedGroupKFold by user–IP component; each test fold scored as a file of its own;")
    print(
        "  F1 at the threshold chosen inside each training fold (out-of-fold best F1), never on the test fold"
    )
    texts = table.texts
    star = np.asarray(table.rating)
    summary = []
    for seed in seeds:
        splits = _baseline_folds(y, groups, seed)
        # Baseline 1: five stars ⇒ fake (AUC: the star as the score).
        f1_rule = float(np.mean([f1_score(y[te], star[te] >= 5) for _, te in splits]))
        auc_rule = float(np.mean([roc_auc_score(y[te], star[te]) for _, te in splits]))
        # Baseline 2: character 1-3 TF-IDF + logistic regression (C=1), label at 0.5.
        tfidf = np.zeros(len(y))
        for tr, te in splits:
            vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
            lr = LogisticRegression(C=1.0, solver="liblinear").fit(
                vec.fit_transform([texts[i] for i in tr]), y[tr]
            )
            tfidf[te] = lr.predict_proba(vec.transform([texts[i] for i in te]))[:, 1]
        auc_tfidf, f1_tfidf = _fold_metrics(y, splits, tfidf, [0.5] * len(splits))
        # Baseline 3: today's (version-3) model on Chinese — character 1-4 NB-LR, label at 0.5.
        before = np.zeros(len(y))
        for tr, te in splits:
            m = R.train_model(
                [texts[i] for i in tr],
                [labels[i] for i in tr],
                "+",
                method=R.Method.of(R.NB_CHAR),
                threshold=0.5,
            )
            before[te] = m.score([texts[i] for i in te])
        auc_before, f1_before = _fold_metrics(y, splits, before, [0.5] * len(splits))
        print(f"  split seed {seed}:")
        print(f"    five stars ⇒ fake:                   AUC {auc_rule:.4f}  F1 {f1_rule:.4f}")
        print(f"    char 1-3 TF-IDF + LR (0.5):          AUC {auc_tfidf:.4f}  F1 {f1_tfidf:.4f}")
        print(f"    previous model, char NB-LR (0.5):    AUC {auc_before:.4f}  F1 {f1_before:.4f}")
        runs = [
            ("text only (char 1-3 + jieba words)", R.ReviewTable(texts)),
            ("text + star", R.ReviewTable(texts, rating=star)),
            ("text + star + user + IP (the model)", table),
        ]
        for name, t in runs:
            t0 = time.perf_counter()
            ev = R.evaluate_grouped(t, labels, "+", groups, n_splits=5, seed=seed, n_jobs=jobs)
            secs = time.perf_counter() - t0
            print(
                f"    {name + ':':<37} AUC {ev.mean_auc:.4f}  F1 {ev.mean_f1:.4f}  accuracy "
                f"{ev.mean_accuracy:.4f}  (AUC folds {', '.join(f'{a:.3f}' for a in ev.auc)}; F1 folds "
                f"{', '.join(f'{a:.3f}' for a in ev.f1)}; thresholds {', '.join(f'{a:.2f}' for a in ev.thresholds)}; "
                f"{secs:.0f} s)"
            )
        summary.append(
            (seed, ev.mean_auc, ev.mean_f1, auc_tfidf, f1_tfidf, auc_rule, f1_rule, auc_before, f1_before)
        )
    a = np.array([s[1:] for s in summary])
    med = np.median(a, axis=0)
    print(
        f"  => the model, median over split seeds {seeds}: AUC {med[0]:.4f}, F1 {med[1]:.4f} "
        f"(targets 0.88 / 0.72); char TF-IDF+LR {med[2]:.4f} / {med[3]:.4f}; five stars {med[4]:.4f} / "
        f"{med[5]:.4f}; previous model {med[6]:.4f} / {med[7]:.4f}"
    )
    t0 = time.perf_counter()
    model = R.train_model(table, labels, "+", n_jobs=1)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.score(table)
    t_score = time.perf_counter() - t0
    print(
        f"  train on all {len(table)} (one process): {t_train:.1f} s; threshold {model.threshold:.3f}; "
        f"score {len(table)} (behaviour included): {t_score:.2f} s"
    )


def bench_ott_threshold(jobs: int) -> None:
    """English: what choosing the threshold for F1 does to the accuracy the Ott figure measures."""
    cols = R.read_columns(DATA, ["text", "label", "hotel"])
    print(
        f"\n[1b] {DATA.name}: the whole model (text only, threshold by out-of-fold best F1), 5-fold by hotel"
    )
    for seed in (0, 1, 2):
        ev = R.evaluate_grouped(
            cols["text"], cols["label"], "deceptive", cols["hotel"], seed=seed, n_jobs=jobs
        )
        at_half = float(np.mean([np.mean((ev.oof_scores[te] >= 0.5) == ev.y[te]) for te in ev.test_folds]))
        print(
            f"  StratifiedGroupKFold seed {seed}: accuracy {ev.mean_accuracy:.4f} at the chosen thresholds "
            f"({', '.join(f'{t:.2f}' for t in ev.thresholds)}), {at_half:.4f} at 0.5; F1 {ev.mean_f1:.4f}; "
            f"AUC {ev.mean_auc:.4f}"
        )


def bench_templates() -> None:
    rng = random.Random(0)
    cols = R.read_columns(DATA, ["text"])
    base = cols["text"]
    n_templates, copies = 50, 5
    texts = list(base)
    planted: list[list[int]] = []
    for src in rng.sample(range(len(base)), n_templates):
        words = base[src].split()
        group = []
        for _ in range(copies):
            w = list(words)
            for _ in range(max(1, len(w) // 40)):  # ~2.5 % of the words swapped, as a farm edits
                w[rng.randrange(len(w))] = rng.choice(words)
            group.append(len(texts))
            texts.append(" ".join(w) + rng.choice(["", "!", " :)", "!!"]))
        planted.append([src, *group])
    t = time.perf_counter()
    groups = R.find_template_groups(texts, threshold=0.8)
    secs = time.perf_counter() - t
    found = [set(g.members) for g in groups]
    whole = sum(any(set(p) <= f for f in found) for p in planted)
    planted_rows = {i for p in planted for i in p}
    stray = [f for f in found if not f & planted_rows]
    print(f"\n[2] templates (MinHash 128 perms, LSH {R.lsh_params(0.8, 128)} bands×rows, threshold 0.8)")
    print(
        f"  {n_templates} planted groups of {copies + 1} (source + edited copies) among {len(base)} dev "
        f"reviews: {whole}/{n_templates} recovered whole; {len(stray)} other group(s) "
        f"(the dev file's own exact duplicates); {secs:.2f} s for {len(texts)} texts"
    )

    vocab = " ".join(base).split()
    n = 20_000
    synth = [" ".join(rng.choice(vocab) for _ in range(rng.randint(60, 200))) for _ in range(n)]
    t = time.perf_counter()
    groups = R.find_template_groups(synth, threshold=0.8)
    secs = time.perf_counter() - t
    print(
        f"  throughput: {n:,} synthetic reviews (60-200 words) in {secs:.1f} s "
        f"({n / secs:,.0f} reviews/s), {len(groups)} group(s)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="skip the nested run")
    ap.add_argument("--jobs", type=int, default=2, help="parallel CV folds")
    ap.add_argument(
        "--seeds",
        type=seed_arg,
        default=[None, 0, 1],
        help="split seeds, comma-separated ('none': GroupKFold's own assignment)",
    )
    ap.add_argument(
        "--dianping-seeds",
        type=lambda t: [int(s) for s in t.split(",") if s.strip()],
        default=[0, 1, 2],
        help="split seeds of the Chinese (Dianping) grouped CV, comma-separated",
    )
    ap.add_argument(
        "--parts",
        type=lambda t: [p.strip() for p in t.split(",") if p.strip()],
        default=list(PARTS),
        help=f"what to run, comma-separated, of {', '.join(PARTS)}",
    )
    args = ap.parse_args()
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        raise SystemExit(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    for path in (DATA, DIANPING):
        if not path.is_file():
            raise SystemExit(f"development data {path} not present (see shared/data/README.md)")
    print(f"machine: {machine()}")
    print(f"load average at start: {os.getloadavg()} (a shared machine: timings are indicative)")
    if "dianping" in args.parts:
        bench_dianping(args.dianping_seeds, args.jobs)
    if "ott" in args.parts:
        bench_classifier(args.quick, args.jobs, args.seeds)
    if "ott-threshold" in args.parts:
        bench_ott_threshold(args.jobs)
    if "templates" in args.parts:
        bench_templates()
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
