"""Commands of `fcx detect` over text (merged into one Typer app by detect/cli.py).

`fcx detect reviews train|score|duplicates`: fake reviews (虚假评价, behaviour `fake_review`).
The detector module (detect/reviews.py) is imported inside each command: its estimators subclass
scikit-learn's at module level, and model files refer to them there, so importing it means importing
scikit-learn — most of a second that `fcx --help` and every other command would pay.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import typer

from fanchaoxin.core.spreadsheet import safe_row
from fanchaoxin.detect import options
from fanchaoxin.detect import submit as submission
from fanchaoxin.detect.io import InputError

app = typer.Typer()
reviews_app = typer.Typer(
    help="Fake reviews (虚假评价): train and apply a text classifier, find template groups (模板好评).",
    no_args_is_help=True,
)
app.add_typer(reviews_app, name="reviews")


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=1)


@reviews_app.command("train")
def train(
    input: Path = typer.Option(..., "--input", help="Labelled reviews, CSV (UTF-8 / GBK) or Parquet."),
    text_col: str = typer.Option("text", "--text-col", help="Column with the review text."),
    label_col: str = typer.Option("label", "--label-col", help="Column with the label (two values)."),
    positive: str = typer.Option(..., "--positive", help="The label value meaning fake, e.g. 'deceptive'."),
    model: Path = typer.Option(..., "--model", help="Where to write the model file (joblib)."),
    group_col: str | None = typer.Option(
        None,
        "--group-col",
        help="Group column (e.g. hotel, shop): report cross-validation with whole groups held out.",
    ),
    cv: int = typer.Option(5, "--cv", help="Number of grouped CV folds (with --group-col)."),
    c: float | None = typer.Option(
        None,
        "--c",
        help="Regularisation C of every model of the method (default: each model's own; not with --tune).",
    ),
    tune: bool = typer.Option(
        False,
        "--tune",
        help="Choose the method (features, weighting, model, C, ensembles) by inner grouped CV, nested "
        "inside the reported CV. Slower.",
    ),
    jobs: int = typer.Option(1, "--jobs", help="Parallel CV folds (-1: all cores)."),
) -> None:
    """Train a review-text classifier; with --group-col also print grouped CV accuracy."""
    from fanchaoxin.detect import reviews as R

    try:
        cols = R.read_columns(input, [text_col, label_col, *([group_col] if group_col else [])])
        texts, labels = cols[text_col], cols[label_col]
        R.require_nonempty(input, text_col, texts)
        R.require_nonempty(input, label_col, labels)
        R.encode_labels(labels, positive, source=str(input))  # fail on labels before any CV work
        cv_result = None
        if group_col:
            groups = cols[group_col]
            R.require_nonempty(input, group_col, groups)
            cv_result = R.grouped_cv(
                texts, labels, groups, positive, n_splits=cv, c=c, tune=tune, n_jobs=jobs, source=str(input)
            )
            folds = ", ".join(f"{a:.3f}" for a in cv_result.accuracies)
            typer.echo(
                f"grouped CV (GroupKFold by {group_col}, {cv_result.n_splits} folds, "
                f"{cv_result.n_groups} groups): accuracy {cv_result.mean:.3f} ± {cv_result.std:.3f} "
                f"(folds: {folds})"
            )
            if tune:
                typer.echo("method chosen per fold: " + "; ".join(cv_result.methods))
        m = R.train_model(
            texts,
            labels,
            positive,
            c=c,
            tune=tune,
            groups=cols[group_col] if group_col else None,
            n_jobs=jobs,
            source=str(input),
        )
        if cv_result is not None:
            m.meta["grouped_cv"] = {
                "group_col": group_col,
                "folds": cv_result.n_splits,
                "groups": cv_result.n_groups,
                "accuracy_mean": cv_result.mean,
                "accuracy_std": cv_result.std,
                "accuracies": cv_result.accuracies,
            }
        m.save(model)
    except (InputError, R.ReviewModelError, OSError) as exc:
        raise _fail(exc) from exc
    typer.echo(
        f"model written to {model}: {len(texts)} reviews, positive={m.positive!r}, "
        f"negative={m.negative!r}, method: {m.meta.get('method', '?')}"
    )


@reviews_app.command("score")
def score(
    model: Path = typer.Option(..., "--model", help="A model file made by `fcx detect reviews train`."),
    input: Path = typer.Option(..., "--input", help="Reviews to score, CSV (UTF-8 / GBK) or Parquet."),
    text_col: str = typer.Option("text", "--text-col", help="Column with the review text."),
    output: Path = typer.Option(..., "--output", help="CSV to write: row, score, label."),
) -> None:
    """Score reviews: row (1-based data row), score (0..1, likelihood of the positive label), label."""
    from fanchaoxin.detect import reviews as R

    try:
        m = R.ReviewModel.load(model)
        texts = R.read_columns(input, [text_col])[text_col]
        R.require_nonempty(input, text_col, texts)
        scores = m.score(texts)
        with output.open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["row", "score", "label"])
            for i, s in enumerate(scores, start=1):
                # Labels are whatever the training file said: no cell may open as a formula.
                w.writerow(safe_row([i, f"{s:.6f}", m.positive if s >= 0.5 else m.negative]))
    except (InputError, R.ReviewModelError, OSError) as exc:
        raise _fail(exc) from exc
    n_pos = int((scores >= 0.5).sum())
    typer.echo(f"scored {len(texts)} reviews, {n_pos} labelled {m.positive!r}; written to {output}")


@reviews_app.command("duplicates")
def duplicates(
    input: Path = typer.Option(..., "--input", help="Reviews, CSV (UTF-8 / GBK) or Parquet."),
    text_col: str = typer.Option("text", "--text-col", help="Column with the review text."),
    output: Path = typer.Option(..., "--output", help="JSON file to write the template groups to."),
    id_col: str | None = typer.Option(
        None, "--id-col", help="Review id column (unique); default: the 1-based data row number."
    ),
    author_col: str | None = typer.Option(
        None, "--author-col", help="Account that posted the review: findings then name the accounts."
    ),
    threshold: float = typer.Option(
        0.8, "--threshold", min=0.05, max=1.0, help="Jaccard similarity of character shingles to join."
    ),
    min_size: int = typer.Option(2, "--min-size", min=2, help="Smallest group reported."),
    shingle_size: int = typer.Option(
        0, "--shingle-size", min=0, help="Characters per shingle; 0: 3 for Chinese text, 5 otherwise."
    ),
    submit: bool = options.opt_submit(),
    platform: str | None = options.opt_platform(),
    key: str | None = options.opt_key(),
    account_namespace: str | None = options.opt_namespace(),
    severity: options.Severity = options.opt_severity(),
    submit_min_score: float | None = options.opt_min_score(),
) -> None:
    """Find near-duplicate review templates (MinHash + LSH); write `fake_review` findings as JSON."""
    from fanchaoxin.detect import reviews as R

    options.check_options(submit, platform, key)
    try:
        wanted = [text_col, *([id_col] if id_col else []), *([author_col] if author_col else [])]
        cols = R.read_columns(input, wanted, unique=[id_col] if id_col else [])
        texts = cols[text_col]
        R.require_nonempty(input, text_col, texts)
        ids = cols[id_col] if id_col else [str(i) for i in range(1, len(texts) + 1)]
        authors = cols[author_col] if author_col else None
        if authors is not None:
            R.require_nonempty(input, author_col or "", authors)
        groups = R.find_template_groups(
            texts, threshold, shingle_size=shingle_size or None, min_size=min_size
        )
        findings = R.template_findings(groups, texts, ids, authors)
        doc = {
            "detector": "review-templates",
            "input": str(input),
            "threshold": threshold,
            "n_reviews": len(texts),
            "n_groups": len(findings),
            "n_reviews_in_groups": sum(len(g.members) for g in groups),
            "findings": [f.to_dict() for f in findings],
        }
        output.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    except (InputError, OSError) as exc:
        raise _fail(exc) from exc
    typer.echo(
        f"{len(findings)} template group(s) covering {doc['n_reviews_in_groups']} of {len(texts)} reviews; "
        f"written to {output}"
    )
    if submit:
        submission.cli_submit(
            findings,
            platform=platform,
            key=key,
            namespace=account_namespace,
            severity=severity,
            min_score=submit_min_score,
        )
