"""Commands of `fcx detect` over reviews (merged into one Typer app by detect/cli.py).

`fcx detect reviews train|score|duplicates`: fake reviews (虚假评价, behaviour `fake_review`).
Fast start (#20): this module imports only typer, the standard library, `detect.options` and
`core.spreadsheet` (standard library only) at module level. The detector (detect/reviews.py:
scikit-learn, the Chinese segmenter), `detect.io` (DuckDB) and `detect.submit` (the platform
client) are imported inside the command that needs them, so `fcx detect --help` and every other
command do not pay for them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import typer

from fanchaoxin.core.spreadsheet import safe_row  # standard library only: keeps the start fast
from fanchaoxin.detect import options

app = typer.Typer()
reviews_app = typer.Typer(
    help="Fake reviews (虚假评价): train and apply a text + behaviour model; template groups (模板好评).",
    no_args_is_help=True,
)
app.add_typer(reviews_app, name="reviews")

# What `--col NAME=COLUMN` may name, per command (the same names as the --NAME-col options).
_TRAIN_ROLES = ("text", "label", "rating", "user", "ip", "product", "time", "group")
_SCORE_ROLES = ("text", "rating", "user", "ip", "product", "time")
_BEHAVIOUR_PANEL = "Reviewer behaviour (optional columns)"


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=1)


def _opt_rating() -> str | None:
    return typer.Option(
        None,
        "--rating-col",
        help="Star rating (a number): the rating, the user's and IP's mean, gap to the product's mean.",
        rich_help_panel=_BEHAVIOUR_PANEL,
    )


def _opt_user() -> str | None:
    return typer.Option(
        None,
        "--user-col",
        help="Reviewer account: reviews per user, IPs per user, bursts.",
        rich_help_panel=_BEHAVIOUR_PANEL,
    )


def _opt_ip() -> str | None:
    return typer.Option(
        None,
        "--ip-col",
        help="IP address (or device): reviews and users per IP, the IP's ratings, bursts.",
        rich_help_panel=_BEHAVIOUR_PANEL,
    )


def _opt_product() -> str | None:
    return typer.Option(
        None,
        "--product-col",
        help="Product or shop reviewed: reviews per product, rating against the product's mean.",
        rich_help_panel=_BEHAVIOUR_PANEL,
    )


def _opt_time() -> str | None:
    return typer.Option(
        None,
        "--time-col",
        help="Review time: bursts of a user / IP / product within an hour and a day (see --timezone).",
        rich_help_panel=_BEHAVIOUR_PANEL,
    )


def _resolve(
    col: list[str], expected: tuple[str, ...], given: dict[str, str | None], defaults: dict[str, str]
) -> dict[str, str]:
    """Role → the file's column: `--col NAME=COLUMN` or the `--NAME-col` option (exit 2 if they differ)."""
    mapping = options.parse_columns(col, expected=list(expected))
    out: dict[str, str] = {}
    for role in expected:
        via_col, via_opt = mapping.get(role), given.get(role)
        if via_col and via_opt and via_opt != defaults.get(role) and via_opt != via_col:
            typer.echo(
                f"error: --col {role}={via_col} and --{role}-col {via_opt} name different columns", err=True
            )
            raise typer.Exit(2)
        chosen = via_col or via_opt
        if chosen:
            out[role] = chosen
    return out


def _write_atomically(path: Path, write: object) -> None:
    """Write through `path`.part and rename, so that a failure leaves no half-written file."""
    part = path.with_name(path.name + ".part")
    try:
        with part.open("w", encoding="utf-8", newline="") as fh:
            write(fh)  # type: ignore[operator]
        part.replace(path)
    finally:
        part.unlink(missing_ok=True)


@reviews_app.command("train")
def train(
    input: Path = typer.Option(
        ..., "--input", help="Labelled reviews: CSV (UTF-8 / GBK), Parquet or JSON Lines."
    ),
    text_col: str = typer.Option("text", "--text-col", help="Column with the review text."),
    label_col: str = typer.Option("label", "--label-col", help="Column with the label (two values)."),
    positive: str = typer.Option(..., "--positive", help="The label value meaning fake, e.g. 'deceptive'."),
    model: Path = typer.Option(..., "--model", help="Where to write the model file (joblib)."),
    rating_col: str | None = _opt_rating(),
    user_col: str | None = _opt_user(),
    ip_col: str | None = _opt_ip(),
    product_col: str | None = _opt_product(),
    time_col: str | None = _opt_time(),
    threshold: float | None = typer.Option(
        None,
        "--threshold",
        min=0.0,
        max=1.0,
        help="Score at or above which a review is labelled fake (default: the best F1 on out-of-fold "
        "training scores).",
    ),
    group_col: str | None = typer.Option(
        None,
        "--group-col",
        help="Group column (e.g. hotel, shop): report cross-validation with whole groups held out.",
    ),
    cv_by_accounts: bool = typer.Option(
        False,
        "--cv-by-accounts",
        help="Report cross-validation with folds grouped by the connected components of the user–IP "
        "graph (needs --user-col or --ip-col).",
    ),
    cv: int = typer.Option(
        5, "--cv", help="Number of grouped CV folds (with --group-col / --cv-by-accounts)."
    ),
    c: float | None = typer.Option(
        None,
        "--c",
        help="Regularisation C of every text model (default: each model's own; not with --tune).",
    ),
    tune: bool = typer.Option(
        False,
        "--tune",
        help="Choose the text method (features, weighting, model, C, ensembles) by inner grouped CV, nested "
        "inside the reported CV. Slower.",
    ),
    jobs: int = typer.Option(1, "--jobs", help="Parallel CV folds (-1: all cores)."),
    col: list[str] = options.opt_columns(),
    timezone: str = options.opt_timezone(),
) -> None:
    """Train a fake-review model (text, and rating and behaviour where columns are given).

    With --group-col or --cv-by-accounts also print grouped CV: AUC, and F1 and accuracy at the
    threshold chosen inside each training fold.
    """
    from fanchaoxin.detect import reviews as R
    from fanchaoxin.detect.io import InputError

    roles = _resolve(
        col,
        _TRAIN_ROLES,
        {
            "text": text_col,
            "label": label_col,
            "rating": rating_col,
            "user": user_col,
            "ip": ip_col,
            "product": product_col,
            "time": time_col,
            "group": group_col,
        },
        {"text": "text", "label": "label"},
    )
    if cv_by_accounts and not ({"user", "ip"} & set(roles)):
        typer.echo("error: --cv-by-accounts needs --user-col or --ip-col", err=True)
        raise typer.Exit(2)
    try:
        table, other = R.read_reviews(input, roles, timezone=timezone)
        labels = other["label"]
        R.encode_labels(labels, positive, source=str(input))  # fail on labels before any CV work
        R.check_inputs(table.inputs)
        groups = other.get("group")
        if groups is not None:
            R.require_nonempty(input, roles["group"], groups)
        behaviour_cols = {r: roles[r] for r in ("text", *table.inputs)}
        evaluation = None
        if groups is not None or cv_by_accounts:
            by = f"by {roles['group']}" if groups is not None else "by user–IP components"
            evaluation = R.evaluate_grouped(
                table,
                labels,
                positive,
                groups,
                n_splits=cv,
                n_jobs=jobs,
                source=str(input),
                c=c,
                tune=tune,
                threshold=threshold,
            )
            typer.echo(
                f"grouped CV (StratifiedGroupKFold {by}, {evaluation.n_splits} folds, {evaluation.n_groups} "
                f"groups): AUC {evaluation.mean_auc:.3f} ± {_sd(evaluation.auc):.3f}, "
                f"F1 {evaluation.mean_f1:.3f} ± {_sd(evaluation.f1):.3f}, "
                f"accuracy {evaluation.mean_accuracy:.3f} ± {_sd(evaluation.accuracy):.3f} "
                f"(labels at each training fold's own threshold: "
                f"{', '.join(f'{t:.3f}' for t in evaluation.thresholds)})"
            )
        m = R.train_model(
            table,
            labels,
            positive,
            c=c,
            tune=tune,
            groups=groups,
            n_jobs=jobs,
            threshold=threshold,
            columns=behaviour_cols,
            source=str(input),
        )
        if evaluation is not None:
            m.meta["grouped_cv"] = {
                "groups_by": roles.get("group", "user-IP components"),
                "folds": evaluation.n_splits,
                "groups": evaluation.n_groups,
                "auc": evaluation.auc,
                "f1": evaluation.f1,
                "accuracy": evaluation.accuracy,
                "thresholds": evaluation.thresholds,
                "auc_mean": evaluation.mean_auc,
                "f1_mean": evaluation.mean_f1,
                "accuracy_mean": evaluation.mean_accuracy,
            }
        model.parent.mkdir(parents=True, exist_ok=True)
        m.save(model)
    except (InputError, R.ReviewModelError, OSError) as exc:
        raise _fail(exc) from exc
    uses = ", ".join(f"{r} ({behaviour_cols[r]})" for r in table.inputs) or "text only"
    typer.echo(
        f"model written to {model}: {len(table)} reviews, positive={m.positive!r}, negative={m.negative!r}; "
        f"uses {uses}; threshold {m.threshold:.3f} ({m.meta['threshold_from']}); "
        f"text method: {m.meta.get('method', '?')}"
    )


def _sd(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5


@reviews_app.command("score")
def score(
    model: Path = typer.Option(..., "--model", help="A model file made by `fcx detect reviews train`."),
    input: Path = typer.Option(
        ..., "--input", help="Reviews to score: CSV (UTF-8 / GBK), Parquet or JSON Lines."
    ),
    output: Path = typer.Option(..., "--output", help="CSV to write: row, score, label."),
    text_col: str | None = typer.Option(
        None, "--text-col", help="Column with the review text (default: the training file's)."
    ),
    rating_col: str | None = _opt_rating(),
    user_col: str | None = _opt_user(),
    ip_col: str | None = _opt_ip(),
    product_col: str | None = _opt_product(),
    time_col: str | None = _opt_time(),
    threshold: float | None = typer.Option(
        None,
        "--threshold",
        min=0.0,
        max=1.0,
        help="Label fake at or above this score (default: the model's).",
    ),
    col: list[str] = options.opt_columns(),
    timezone: str = options.opt_timezone(),
) -> None:
    """Score reviews: row (1-based data row), score (probability of the positive label), label.

    Behaviour is computed over the file given, as at training; the file must have every column the
    model was trained with (by the training file's names unless --NAME-col or --col say otherwise).
    """
    from fanchaoxin.detect import reviews as R
    from fanchaoxin.detect.io import InputError

    given = {
        "text": text_col,
        "rating": rating_col,
        "user": user_col,
        "ip": ip_col,
        "product": product_col,
        "time": time_col,
    }
    roles = _resolve(col, _SCORE_ROLES, given, {})
    try:
        m = R.ReviewModel.load(model)
        needed = ("text", *m.inputs)
        unused = sorted(set(roles) - set(needed))
        if unused:
            typer.echo(f"note: the model uses no {', '.join(unused)} column; ignored", err=True)
        wanted = {r: roles.get(r) or m.columns.get(r, r) for r in needed}
        try:
            table, _ = R.read_reviews(input, wanted, timezone=timezone)
        except InputError as exc:
            if exc.row is not None or exc.column not in wanted.values():
                raise
            needs = ", ".join(f"{r} (column {c!r})" for r, c in wanted.items())
            raise InputError(
                f"{exc}. The model {model} needs {needs}; where the file calls one otherwise, "
                "name it with --NAME-col (e.g. --user-col) or --col NAME=COLUMN",
                path=exc.path,
                column=exc.column,
            ) from exc
        scores = m.score(table)
        cut = m.threshold if threshold is None else threshold

        def write(fh: object) -> None:
            w = csv.writer(fh)  # type: ignore[arg-type]
            w.writerow(["row", "score", "label"])
            for i, s in enumerate(scores, start=1):
                # Labels are whatever the training file said: no cell may open as a formula.
                w.writerow(safe_row([i, f"{s:.6f}", m.positive if s >= cut else m.negative]))

        _write_atomically(output, write)
    except (InputError, R.ReviewModelError, OSError) as exc:
        raise _fail(exc) from exc
    n_pos = int((scores >= cut).sum())
    typer.echo(
        f"scored {len(table)} reviews, {n_pos} labelled {m.positive!r} (score ≥ {cut:.3f}); "
        f"written to {output}"
    )


@reviews_app.command("duplicates")
def duplicates(
    input: Path = typer.Option(..., "--input", help="Reviews, CSV (UTF-8 / GBK) or Parquet."),
    text_col: str | None = typer.Option(
        None, "--text-col", help="Column with the review text [default: text]."
    ),
    output: Path = typer.Option(..., "--output", help="JSON file to write the template groups to."),
    col: list[str] = options.opt_columns(),
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
    from fanchaoxin.detect import submit as submission
    from fanchaoxin.detect.io import InputError

    options.check_options(submit, platform, key)
    # --col text=body --col id=review_id --col author=uid, the same as the per-column options
    mapping = options.parse_columns(col, expected=["text", "id", "author"])
    text_col = options.pick_column("text", "--text-col", text_col, mapping) or "text"
    id_col = options.pick_column("id", "--id-col", id_col, mapping)
    author_col = options.pick_column("author", "--author-col", author_col, mapping)
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
        _write_atomically(output, lambda fh: fh.write(json.dumps(doc, ensure_ascii=False, indent=2) + "\n"))
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
