"""Fake-review text detection: `fcx detect reviews train|score|duplicates` and the library under it."""

from __future__ import annotations

import csv
import json
import random
import re
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import f1_score, roc_auc_score
from typer.testing import CliRunner

from fanchaoxin.cli import app
from fanchaoxin.detect import reviews as R

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
OTT = DATA / "reviews" / "ott-deceptive-dev.csv"
needs_ott = pytest.mark.skipif(
    not OTT.is_file(), reason=f"development data {OTT} not present (see shared/data/README.md)"
)

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["detect", "reviews", *[str(a) for a in args]])


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


# ----------------------------------------------------------------------------------------------------
# Synthetic Chinese reviews: templated 好评 (what a 刷单 crew pastes) vs. varied genuine-looking ones.
# Full-width punctuation (，！) as typed on a Chinese keyboard.
# ----------------------------------------------------------------------------------------------------

FAKE_TEMPLATES = [
    "宝贝收到了，{q}，物流超快，卖家服务态度一级棒，{p}用着很舒服，五星好评！",
    "非常满意的一次购物，{p}{q}，包装很精美，客服很耐心，下次还会再来，强烈推荐！！",
    "好评好评！{p}和描述的一模一样，{q}，性价比超高，已经推荐给朋友了，给卖家点赞！",
]
FAKE_PRODUCTS = ["这款衣服", "这个杯子", "这双鞋", "这个包", "这款耳机", "这条裤子", "这个台灯", "这款面霜"]
FAKE_QUALITIES = ["质量非常好", "做工特别精致", "质量杠杠的", "手感超级好", "品质没得说"]

GENUINE = [
    "鞋子偏小半码，我平时穿39这次换了40才合适，鞋底有点硬，走久了脚后跟磨得疼。",
    "杯子保温效果一般，早上八点装的热水到中午就只剩温的了，不过颜色挺好看。",
    "快递放在小区驿站三天才通知我，东西倒是没坏，就是外箱压扁了一个角。",
    "耳机左边偶尔有电流声，联系客服说可以换货，来回折腾了一个星期才弄好。",
    "台灯亮度三档，最暗那档看书还是有点刺眼，USB线太短，只能放在插座旁边。",
    "面霜味道有点冲，用了两周皮肤没有过敏，保湿还可以，冬天可能不够滋润。",
    "裤子腰围合适但是裤长偏长，得拿去改一下，布料比我想象的薄。",
    "包的拉链不太顺滑，内衬有一股胶水味，放阳台晾了两天才散掉。",
    "第二次买了，这次颜色和上次不一样，偏暗一点，不知道是不是批次问题。",
    "衣服洗了一次就起球了，袖口缝线也开了，申请退货，运费自己出的。",
    "孩子很喜欢这个水杯，吸管设计不漏水，就是清洗吸管比较麻烦，要买专门的刷子。",
    "价格比超市便宜二十块，日期是今年三月的，还算新鲜，箱子里有一袋破了。",
    "安装说明书写得很乱，螺丝少了两颗，自己去五金店买的，装好以后还挺稳。",
    "尺码表和实物对不上，按表选的L，结果肩宽窄了两厘米，只能送人了。",
    "电池续航大概六个小时，比宣传的十小时差不少，充电倒是挺快，一个多小时充满。",
    "送货师傅态度很好，帮忙搬上了六楼，床垫有点味道，开窗通风几天就好了。",
    "颜色比图片上浅，接近米白色，搭配还行，面料摸起来有点粗糙。",
    "键盘手感偏软，打字声音不大适合办公室，背光只有白色一种，有点单调。",
    "收到的时候冰袋已经化了，牛肉有点软，煮出来味道还行，下次夏天不敢买了。",
    "锅底不粘效果头两个月很好，现在煎蛋开始粘锅了，可能是我用铁铲刮坏的。",
    "书的纸张有点薄，能透过看到背面的字，印刷倒是清楚，有几页装订歪了。",
    "椅子坐久了腰不累，扶手高度不能调，对我这个身高来说有点低。",
    "猫粮猫咪挺爱吃，但是吃了以后便便有点软，换回原来的牌子慢慢过渡。",
    "窗帘遮光大概七成，早上还是会有点亮，挂钩数量刚好够，没有多的备用。",
    "手机壳边缘有毛刺，摄像头那块开孔偏了一点点，用久了掉色发黄。",
    "洗发水泡沫很多，洗完头发有点涩，需要配合护发素用，香味留香不长。",
    "吸尘器吸力可以，噪音挺大，晚上用怕吵到邻居，集尘盒倒起来方便。",
    "行李箱轮子转向灵活，拉杆有点晃，第一次托运回来外壳就划了好几道。",
    "榨汁机刀片锋利，榨苹果没问题，胡萝卜要切得很小块，不然会卡住。",
    "雨伞收起来比较重，伞骨结实，大风天没有翻过来，伞套太紧不好塞。",
]


def chinese_corpus(seed: int = 0, n_fake: int = 30) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    fakes = [
        rng.choice(FAKE_TEMPLATES).format(p=rng.choice(FAKE_PRODUCTS), q=rng.choice(FAKE_QUALITIES))
        for _ in range(n_fake)
    ]
    texts = fakes + GENUINE
    labels = ["刷评"] * len(fakes) + ["真实"] * len(GENUINE)
    order = list(range(len(texts)))
    rng.shuffle(order)
    return [texts[i] for i in order], [labels[i] for i in order]


# ----------------------------------------------------------------------------------------------------
# Train / score
# ----------------------------------------------------------------------------------------------------


def test_cli_train_score_round_trip_chinese(tmp_path: Path) -> None:
    texts, labels = chinese_corpus(seed=1)
    train = write_csv(
        tmp_path / "train.csv",
        ["id", "text", "label"],
        [[str(i), t, lab] for i, (t, lab) in enumerate(zip(texts, labels, strict=True))],
    )
    model = tmp_path / "m.joblib"
    res = invoke(
        "train",
        "--input",
        train,
        "--text-col",
        "text",
        "--label-col",
        "label",
        "--positive",
        "刷评",
        "--model",
        model,
    )
    assert res.exit_code == 0, res.output
    assert model.is_file()

    # New reviews: fresh template fills with half-width (ASCII) punctuation, and unseen genuine text.
    new_fake = [
        "宝贝收到了,手感超级好,物流超快,卖家服务态度一级棒,这款围巾用着很舒服,五星好评!",
        "好评好评!这个书包和描述的一模一样,做工特别精致,性价比超高,已经推荐给朋友了,给卖家点赞!",
    ]
    new_real = [
        "插头是欧标的，国内用还得另买转换器，商品页面上完全没写，差评。",
        "鱼竿第二节有一条细裂纹，拍照给客服以后补寄了一节，钓了两次还没问题。",
    ]
    score_in = write_csv(tmp_path / "new.csv", ["text"], [[t] for t in new_fake + new_real])
    out = tmp_path / "scores.csv"
    res = invoke("score", "--model", model, "--input", score_in, "--text-col", "text", "--output", out)
    assert res.exit_code == 0, res.output
    with out.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["row", "score", "label"]
    assert [r["row"] for r in rows] == ["1", "2", "3", "4"]
    scores = [float(r["score"]) for r in rows]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert [r["label"] for r in rows] == ["刷评", "刷评", "真实", "真实"]
    assert min(scores[:2]) > max(scores[2:])


def test_chinese_held_out_and_nfkc() -> None:
    texts, labels = chinese_corpus(seed=2, n_fake=40)
    cut = int(len(texts) * 0.7)
    model = R.train_model(texts[:cut], labels[:cut], "刷评")
    pred = model.predict(texts[cut:])
    acc = np.mean([p == t for p, t in zip(pred, labels[cut:], strict=True)])
    assert acc >= 0.9
    # Full-width (全角) and half-width forms are one text after NFKC: identical scores.
    full = "好评好评！ＷＩＦＩ很快，这款耳机和描述的一模一样，１００分！"
    half = "好评好评!wifi很快,这款耳机和描述的一模一样,100分!"
    assert R.normalise_text(full) == R.normalise_text(half)
    s_full, s_half = model.score([full, half])
    assert s_full == pytest.approx(s_half, abs=1e-12)


def test_model_file_stores_version_and_labels(tmp_path: Path) -> None:
    texts, labels = chinese_corpus(seed=3)
    model = R.train_model(texts, labels, "刷评")
    path = tmp_path / "m.joblib"
    model.save(path)
    payload = joblib.load(path)
    assert payload["format"] == R.MODEL_FORMAT and payload["version"] == R.MODEL_VERSION
    assert (payload["positive"], payload["negative"]) == ("刷评", "真实")
    loaded = R.ReviewModel.load(path)
    assert np.allclose(loaded.score(texts[:5]), model.score(texts[:5]))

    payload["version"] = 999
    joblib.dump(payload, path)
    with pytest.raises(R.ReviewModelError, match="version"):
        R.ReviewModel.load(path)
    joblib.dump({"something": "else"}, path)
    with pytest.raises(R.ReviewModelError, match="not a review-text model"):
        R.ReviewModel.load(path)


def test_version_1_model_file_is_refused_clearly(tmp_path: Path) -> None:
    # A version-1 file pickled the old CalibratedLinearSVC; it must load far enough to be refused.
    texts, labels = chinese_corpus(seed=3)
    y, _ = R.encode_labels(labels, "刷评")
    pipe = R.build_member(R.Member(weighting="tfidf", classifier="svm", C=1.0)).fit(texts, y)
    fitted = pipe.steps[-1][1]
    old_clf = R.CalibratedLinearSVC.__new__(R.CalibratedLinearSVC)  # the attributes version 1 pickled
    old_clf.__dict__.update(C=1.0, cv=3, classes_=fitted.classes_, slope_=fitted.slope_, svm_=fitted.model_)
    pipe.steps[-1] = ("clf", old_clf)
    path = tmp_path / "v1.joblib"
    joblib.dump(
        {
            "format": R.MODEL_FORMAT,
            "version": 1,
            "pipeline": pipe,
            "positive": "刷评",
            "negative": "真实",
            "meta": {},
        },
        path,
    )
    with pytest.raises(R.ReviewModelError, match=r"version 1 is not supported.*retrain"):
        R.ReviewModel.load(path)
    res = invoke(
        "score",
        "--model",
        path,
        "--input",
        write_csv(tmp_path / "s.csv", ["text"], [[texts[0]]]),
        "--output",
        tmp_path / "o.csv",
    )
    assert res.exit_code == 1 and "retrain" in res.output


def test_version_2_model_file_is_refused_clearly(tmp_path: Path) -> None:
    # Version 2 pickled one sklearn Pipeline (features → CalibratedLinear); version 3 a LogitAverage.
    texts, labels = chinese_corpus(seed=3)
    y, _ = R.encode_labels(labels, "刷评")
    pipe = R.build_member(R.NB_CHAR_WORD).fit(texts, y)
    path = tmp_path / "v2.joblib"
    joblib.dump(
        {
            "format": R.MODEL_FORMAT,
            "version": 2,
            "pipeline": pipe,
            "positive": "刷评",
            "negative": "真实",
            "meta": {},
        },
        path,
    )
    with pytest.raises(R.ReviewModelError, match=r"version 2 is not supported.*version 4.*retrain"):
        R.ReviewModel.load(path)
    # Version 3 (text model only, no threshold, no behaviour) is refused the same way.
    payload = {"format": R.MODEL_FORMAT, "version": 3, "pipeline": None, "positive": "a", "negative": "b"}
    joblib.dump(payload, path)
    with pytest.raises(R.ReviewModelError, match=r"version 3 is not supported.*retrain"):
        R.ReviewModel.load(path)


def test_nb_weighting_and_method_grid() -> None:
    # The NB log-count ratio is positive for a feature seen mostly in positive rows, negative otherwise.
    X = sp.csr_matrix(np.array([[1, 0, 1], [1, 0, 0], [0, 1, 1], [0, 1, 0]], dtype=float))
    w = R.NBWeighter().fit(X, np.array([1, 1, 0, 0]))
    assert w.r_[0] > 0 > w.r_[1] and w.r_[2] == pytest.approx(0.0)
    assert R.NBWeighter().fit_transform(sp.csr_matrix((3, 0)), np.array([1, 0, 1])).shape == (3, 0)
    assert R.DEFAULT_METHOD in R.TUNE_GRID and len(set(R.TUNE_GRID)) == len(R.TUNE_GRID)
    with pytest.raises(ValueError, match="weighting"):
        R.Member(weighting="bm25")
    with pytest.raises(ValueError, match="one or more"):
        R.Method(())
    with pytest.raises(ValueError, match="twice"):
        R.Method.of(R.NB_CHAR, R.NB_CHAR)
    assert R.DEFAULT_METHOD.with_c(2.0).members == tuple(m.with_c(2.0) for m in R.DEFAULT_METHOD.members)


def test_tune_picks_a_grid_method_on_chinese() -> None:
    texts, labels = chinese_corpus(seed=9, n_fake=40)
    model = R.train_model(texts, labels, "刷评", tune=True, inner_splits=3)
    assert model.meta["tuned"] and model.meta["method"] in {str(m) for m in R.CHINESE_GRID}
    fresh = "好评好评!这个书包和描述的一模一样,做工特别精致,性价比超高,已经推荐给朋友了,给卖家点赞!"
    real = "鱼竿第二节有一条细裂纹，拍照给客服以后补寄了一节，钓了两次还没问题。"
    s_fake, s_real = model.score([fresh, real])
    assert s_fake > 0.5 > s_real


# A small deterministic English fixture in the spirit of Ott et al.: the paid reviews (deceptive)
# talk about the writer and in superlatives, the genuine ones about spatial detail and prices.
EN_DECEPTIVE = [
    "My husband and I stayed at the {h} for our anniversary and it was the best trip ever!",
    "I absolutely loved the {h}, the staff were amazing and so friendly to me.",
    "I would definitely recommend the {h} to anyone visiting Chicago on business or pleasure.",
    "The {h} is truly luxurious and I can't wait to come back with my family!",
    "My experience at the {h} was perfect, the most wonderful hotel I have ever stayed in.",
    "I was so impressed by the {h}, everything was elegant and my stay was unforgettable.",
]
EN_TRUTHFUL = [
    "Room {n}12 on the {n}th floor faced the river, bathroom small but clean at the {h}.",
    "Paid ${n}9 a night through Priceline; the {h} is two blocks from Michigan Ave.",
    "Elevators were slow at checkout and parking at the {h} was ${n}5 per day.",
    "The desk at the {h} gave us a corner room, window AC unit rattled, tub had a slow drain.",
    "Lobby of the {h} is on the second floor; valet took 20 minutes, coffee in the room was weak.",
    "Bed was firm, carpet worn near the door; {h} is a 10 minute walk to the Loop.",
]
EN_HOTELS = ["Hilton", "Hyatt", "Omni", "Sofitel", "Palmer House", "Allegro", "Talbott", "Amalfi"]


def english_corpus(seed: int, n: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        fake = i % 2 == 0
        pool = EN_DECEPTIVE if fake else EN_TRUTHFUL
        sents = rng.sample(pool, 3)
        texts.append(" ".join(s.format(h=rng.choice(EN_HOTELS), n=rng.randint(2, 9)) for s in sents))
        labels.append("deceptive" if fake else "truthful")
    return texts, labels


def test_default_is_a_char_and_word_logit_average() -> None:
    # Behaviour the default must keep (regression guard, not an accuracy benchmark): it averages a
    # character view and a Latin-word view by their calibrated logits; its score is exactly the
    # sigmoid of the mean clipped member logit, and the label is that score's side of 0.5.
    blocks = [set(R.FEATURE_SETS[m.features]) for m in R.DEFAULT_METHOD.members]
    assert len(R.DEFAULT_METHOD.members) >= 2
    assert any(any(b.startswith("char") for b in bs) for bs in blocks)
    assert any(any(b.startswith("word") for b in bs) for bs in blocks)

    texts, labels = english_corpus(seed=21, n=60)
    model = R.train_model(texts, labels, "deceptive")
    assert model.meta["method"] == str(R.DEFAULT_METHOD)
    assert len(model.meta["members"]) == len(R.DEFAULT_METHOD.members)
    fresh, fresh_labels = english_corpus(seed=22, n=20)
    logits = model.pipeline.member_logits(fresh)
    assert logits.shape == (len(R.DEFAULT_METHOD.members), 20) and not np.isnan(logits).any()
    assert np.abs(logits).max() <= R.LOGIT_CLIP
    scores = model.score(fresh)
    assert np.allclose(scores, 1 / (1 + np.exp(-logits.mean(axis=0))), rtol=0, atol=1e-12)
    assert model.predict(fresh) == fresh_labels  # unseen combinations of the planted cues
    # Every member, on its own, also separates the fixture: none is dead weight or inverted.
    assert all(np.mean((row >= 0) == (np.array(fresh_labels) == "deceptive")) >= 0.9 for row in logits)


def test_chinese_texts_get_characters_and_segmented_words() -> None:
    texts, labels = chinese_corpus(seed=5)
    english, _ = english_corpus(seed=5, n=10)
    assert R.is_chinese(texts) and not R.is_chinese(english)
    assert R.default_method(texts) == R.CHINESE_METHOD and R.default_method(english) == R.DEFAULT_METHOD
    model = R.train_model(texts, labels, "刷评")
    assert model.meta["method"] == str(R.CHINESE_METHOD)
    # jieba segments the CJK runs only: Latin words and punctuation are other blocks' features.
    assert R.chinese_words("服务员很热情，wifi快！") == ["服务员", "很", "热情", "快"]
    assert R.chinese_words("great hotel") == []
    # Both members have features on Chinese text; each separates the planted templates on its own.
    logits = model.pipeline.member_logits(["好评好评!这个书包和描述的一模一样,五星好评!", GENUINE[0]])
    assert not np.isnan(logits).any() and (logits[:, 0] > logits[:, 1]).all()

    # The English default on Chinese text: its Latin-word members abstain (no features, not fitted)
    # and the ensemble scores exactly what its character member scores on its own.
    english_default = R.train_model(texts, labels, "刷评", method=R.DEFAULT_METHOD)
    abstain = [
        m
        for m, clf in zip(R.DEFAULT_METHOD.members, english_default.pipeline.models_, strict=True)
        if clf is None
    ]
    assert abstain and all(set(R.FEATURE_SETS[m.features]) <= {"word1-2", "word1-3"} for m in abstain)
    chars = R.Method(tuple(m for m in R.DEFAULT_METHOD.members if m not in abstain))
    alone = R.train_model(texts, labels, "刷评", method=chars)
    probe = [
        "好评好评!这个书包和描述的一模一样,五星好评!",
        "鱼竿第二节有一条细裂纹，拍照给客服以后补寄了一节。",
    ]
    assert np.allclose(english_default.score(probe), alone.score(probe), rtol=0, atol=1e-12)
    # A method with only Latin-word members cannot be trained on text without Latin words.
    y, _ = R.encode_labels(labels, "刷评")
    with pytest.raises(ValueError, match="no member has any features"):
        R.build_pipeline(method=R.Method.of(R.NB_WORD)).fit(texts, y)


def test_grouped_cv_seed_shuffles_groups_and_method_is_used() -> None:
    texts, labels = english_corpus(seed=31, n=48)
    groups = [EN_HOTELS[(i // 2) % 8] for i in range(48)]  # both labels in each
    a = R.grouped_cv(texts, labels, groups, "deceptive", n_splits=4, seed=3, method=R.Method.of(R.NB_CHAR))
    b = R.grouped_cv(texts, labels, groups, "deceptive", n_splits=4, seed=3, method=R.Method.of(R.NB_CHAR))
    assert a.seed == 3 and a.accuracies == b.accuracies and np.array_equal(a.oof_scores, b.oof_scores)
    assert set(a.methods) == {str(R.NB_CHAR)}
    assert a.mean >= 0.9


@needs_ott
@pytest.mark.slow
def test_grouped_cv_on_dev_file_well_above_chance(tmp_path: Path) -> None:
    # A behaviour check on half the hotels with 4 folds, not the benchmark (bench/bench_reviews.py
    # reports that): the whole model (threshold chosen inside each training fold) well above chance.
    with OTT.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    hotels = sorted({r["hotel"] for r in rows})[:8]
    half = write_csv(
        tmp_path / "ott-half.csv",
        ["text", "label", "hotel"],
        [[r["text"], r["label"], r["hotel"]] for r in rows if r["hotel"] in hotels],
    )
    res = invoke(
        "train",
        "--input",
        half,
        "--positive",
        "deceptive",
        "--model",
        tmp_path / "m.joblib",
        "--group-col",
        "hotel",
        "--cv",
        "4",
        "--jobs",
        "2",
    )
    assert res.exit_code == 0, res.output
    m = re.search(
        r"by hotel, 4 folds, 8 groups\): AUC ([0-9.]+) ± [0-9.]+, F1 ([0-9.]+) ± [0-9.]+, "
        r"accuracy ([0-9.]+) ± [0-9.]+",
        res.output,
    )
    assert m, res.output
    assert float(m.group(1)) >= 0.85 and float(m.group(2)) >= 0.75 and float(m.group(3)) >= 0.75
    meta = R.ReviewModel.load(tmp_path / "m.joblib").meta
    assert meta["grouped_cv"]["folds"] == 4 and meta["n_train"] == 640
    assert meta["method"] == str(R.DEFAULT_METHOD) and meta["threshold_from"].startswith("best F1")


# ----------------------------------------------------------------------------------------------------
# Bad inputs
# ----------------------------------------------------------------------------------------------------


@pytest.fixture
def small_train(tmp_path: Path) -> Path:
    texts, labels = chinese_corpus(seed=4)
    rows = [list(x) for x in zip(texts, labels, strict=True)]
    return write_csv(tmp_path / "t.csv", ["text", "label"], rows)


def test_missing_column(tmp_path: Path, small_train: Path) -> None:
    res = invoke(
        "train",
        "--input",
        small_train,
        "--text-col",
        "review",
        "--label-col",
        "label",
        "--positive",
        "刷评",
        "--model",
        tmp_path / "m.joblib",
    )
    assert res.exit_code == 1
    assert "review" in res.output and "column" in res.output
    assert not (tmp_path / "m.joblib").exists()


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    res = invoke("train", "--input", empty, "--positive", "x", "--model", tmp_path / "m.joblib")
    assert res.exit_code == 1 and "empty" in res.output
    header_only = tmp_path / "h.csv"
    header_only.write_text("text,label\n", encoding="utf-8")
    res = invoke(
        "score", "--model", tmp_path / "m.joblib", "--input", header_only, "--output", tmp_path / "o"
    )
    assert res.exit_code == 1  # no model yet: a clear error, not a traceback
    assert "no such model file" in res.output


def test_bad_encoding(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"text,label\n\xff\xfe\xff great hotel,deceptive\n")
    res = invoke("train", "--input", bad, "--positive", "deceptive", "--model", tmp_path / "m.joblib")
    assert res.exit_code == 1
    assert "UTF-8" in res.output


def test_gbk_file_is_read(tmp_path: Path) -> None:
    texts, labels = chinese_corpus(seed=5)
    gbk = write_csv(
        tmp_path / "gbk.csv",
        ["text", "label"],
        [list(x) for x in zip(texts, labels, strict=True)],
        encoding="gbk",
    )
    res = invoke("train", "--input", gbk, "--positive", "刷评", "--model", tmp_path / "m.joblib")
    assert res.exit_code == 0, res.output


def test_unknown_positive_label(tmp_path: Path, small_train: Path) -> None:
    res = invoke("train", "--input", small_train, "--positive", "deceptive", "--model", tmp_path / "m.joblib")
    assert res.exit_code == 1
    assert "'deceptive'" in res.output and "刷评" in res.output


def test_more_than_two_labels(tmp_path: Path) -> None:
    texts, labels = chinese_corpus(seed=6)
    labels[0] = "不确定"
    p = write_csv(tmp_path / "t.csv", ["text", "label"], [list(x) for x in zip(texts, labels, strict=True)])
    res = invoke("train", "--input", p, "--positive", "刷评", "--model", tmp_path / "m.joblib")
    assert res.exit_code == 1 and "exactly two" in res.output


def test_empty_text_names_the_row(tmp_path: Path) -> None:
    texts, labels = chinese_corpus(seed=7)
    rows = [list(x) for x in zip(texts, labels, strict=True)]
    rows[4][0] = ""
    p = write_csv(tmp_path / "t.csv", ["text", "label"], rows)
    res = invoke("train", "--input", p, "--positive", "刷评", "--model", tmp_path / "m.joblib")
    assert res.exit_code == 1 and "row 5" in res.output
    rows[4][0] = "   "
    p = write_csv(tmp_path / "t.csv", ["text", "label"], rows)
    res = invoke("train", "--input", p, "--positive", "刷评", "--model", tmp_path / "m.joblib")
    assert res.exit_code == 1 and "row 5" in res.output


def test_score_with_wrong_model_file(tmp_path: Path, small_train: Path) -> None:
    not_model = tmp_path / "scores.csv"
    not_model.write_text("row,score,label\n1,0.5,x\n", encoding="utf-8")
    res = invoke("score", "--model", not_model, "--input", small_train, "--output", tmp_path / "o.csv")
    assert res.exit_code == 1 and "not a review-text model" in res.output
    joblib.dump({"format": "something-else"}, tmp_path / "other.joblib")
    res = invoke(
        "score", "--model", tmp_path / "other.joblib", "--input", small_train, "--output", tmp_path / "o.csv"
    )
    assert res.exit_code == 1 and "not a review-text model" in res.output


def test_grouped_cv_needs_enough_groups(tmp_path: Path) -> None:
    texts, labels = chinese_corpus(seed=8)
    rows = [[t, lab, f"shop-{i % 2}"] for i, (t, lab) in enumerate(zip(texts, labels, strict=True))]
    p = write_csv(tmp_path / "t.csv", ["text", "label", "shop"], rows)
    res = invoke(
        "train",
        "--input",
        p,
        "--positive",
        "刷评",
        "--model",
        tmp_path / "m.joblib",
        "--group-col",
        "shop",
        "--cv",
        "5",
    )
    assert res.exit_code == 1 and "fewer than the 5 CV folds" in res.output


# ----------------------------------------------------------------------------------------------------
# Rating and reviewer behaviour (#20)
# ----------------------------------------------------------------------------------------------------

DIANPING = DATA / "reviews" / "dianping-dev.csv"
needs_dianping = pytest.mark.skipif(
    not DIANPING.is_file(), reason=f"development data {DIANPING} not present (see shared/data/README.md)"
)


def test_behaviour_features_by_hand() -> None:
    # u1 posts three reviews from one IP within 40 minutes (a burst), two of them the same text; u2
    # shares that IP; u3 is alone. Product p1 has ratings 5, 5, 5, 1.
    t0 = 1_700_000_000.0
    table = R.ReviewTable(
        ["好评好评，五星！", "好评好评，五星!", "菜量很足，上菜慢", "服务一般，环境吵", "价格偏贵"],
        rating=[5, 5, 5, 1, 3],
        user=["u1", "u1", "u1", "u2", "u3"],
        ip=["ip1", "ip1", "ip1", "ip1", "ip2"],
        product=["p1", "p1", "p1", "p1", "p2"],
        time=[t0, t0 + 1200, t0 + 2400, t0 + 30 * 86400, t0],
    )
    X, names = R.behaviour_features(table, np.zeros(5), table.inputs, top_rating=5.0)
    f = {name: X[:, i] for i, name in enumerate(names)}
    assert list(f["user_reviews"]) == [3, 3, 3, 1, 1]
    assert list(f["ip_reviews"]) == [4, 4, 4, 4, 1]
    assert list(f["ip_users"]) == [2, 2, 2, 2, 1] and list(f["user_ips"]) == [1, 1, 1, 1, 1]
    assert list(f["ip_top_rating_share"]) == [0.75, 0.75, 0.75, 0.75, 0.0]
    assert f["rating_minus_product_mean"][3] == pytest.approx(1 - 5)  # against the product's other reviews
    assert f["rating_minus_product_mean"][0] == pytest.approx(5 - (5 + 5 + 1) / 3)
    assert np.isnan(f["rating_minus_product_mean"][4])  # no other review of p2
    assert list(f["user_reviews_within_1h"]) == [2, 2, 2, 0, 0]
    assert list(f["ip_reviews_within_1h"]) == [2, 2, 2, 0, 0]
    assert list(f["product_reviews_within_1d"]) == [2, 2, 2, 0, 0]
    assert list(f["same_text_reviews"]) == [1, 1, 0, 0, 0]  # full/half-width '！' folded
    assert list(f["user_reviews_of_product"]) == [3, 3, 3, 1, 1]
    # Only the inputs asked for: without a product there is no product feature.
    X2, names2 = R.behaviour_features(table, np.zeros(5), ("rating", "user"), top_rating=5.0)
    assert "product_reviews" not in names2 and "user_reviews" in names2 and X2.shape == (5, len(names2))
    # Connected components of the user–IP graph: u1, u2 (via ip1) and u3.
    groups = R.account_groups(table)
    assert groups is not None and groups[0] == groups[3] != groups[4]


def crew_file(tmp_path: Path, seed: int, n_crews: int = 8, n_genuine: int = 120) -> Path:
    """Reviews where the text says little and behaviour a lot: crews of 3 accounts on one IP post
    five-star reviews in bursts; genuine reviewers post once each, any rating, from their own IP."""
    rng = random.Random(seed)
    rows = []
    words = ["菜", "服务", "环境", "价格", "味道", "上菜", "停车", "排队"]

    def text() -> str:
        return "，".join(rng.choice(words) + rng.choice(["不错", "一般", "还行", "可以"]) for _ in range(3))

    start = 1_700_000_000
    for c in range(n_crews):
        t = start + rng.randrange(0, 30 * 86400)
        for k in range(6):
            when = t + k * rng.randrange(60, 600)
            rows.append(
                [text(), "刷评", "5", f"crew{c}-{k % 3}", f"10.0.0.{c}", f"shop{rng.randrange(5)}", when]
            )
    for g in range(n_genuine):
        when = start + rng.randrange(0, 30 * 86400)
        star = str(rng.choice([1, 2, 3, 4, 4, 5, 5]))
        rows.append(
            [
                text(),
                "真实",
                star,
                f"user{g}",
                f"172.16.{g // 200}.{g % 200}",
                f"shop{rng.randrange(5)}",
                when,
            ]
        )
    rng.shuffle(rows)
    for r in rows:
        r[6] = datetime.fromtimestamp(r[6], UTC).strftime("%Y-%m-%d %H:%M:%S")
    return write_csv(
        tmp_path / f"crews{seed}.csv", ["body", "label", "stars", "account", "ip", "shop", "at"], rows
    )


def train_args(path: Path, model: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--input",
        str(path),
        "--text-col",
        "body",
        "--positive",
        "刷评",
        "--model",
        str(model),
        "--rating-col",
        "stars",
        "--user-col",
        "account",
        "--ip-col",
        "ip",
        *extra,
    ]


def test_cli_behaviour_model_threshold_and_score_output(tmp_path: Path) -> None:
    train = crew_file(tmp_path, seed=1)
    model = tmp_path / "m.joblib"
    res = invoke(*train_args(train, model, "--product-col", "shop", "--time-col", "at"))
    assert res.exit_code == 0, res.output
    assert "uses rating (stars), user (account), ip (ip), product (shop), time (at)" in res.output
    payload = joblib.load(model)
    assert payload["inputs"] == ["rating", "user", "ip", "product", "time"]
    assert payload["columns"]["user"] == "account"
    assert 0.0 < payload["threshold"] < 1.0 and payload["stacker"] is not None
    assert "user_reviews_within_1h" in payload["feature_names"]
    assert payload["meta"]["threshold_from"].startswith("best F1")
    assert not model.with_name(model.name + ".part").exists()

    fresh = crew_file(tmp_path, seed=2)  # other crews, other reviewers
    out = tmp_path / "scores.csv"
    res = invoke("score", "--model", model, "--input", fresh, "--output", out)
    assert res.exit_code == 0, res.output
    with out.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with fresh.open(encoding="utf-8") as fh:
        truth = [r["label"] for r in csv.DictReader(fh)]
    assert list(rows[0]) == ["row", "score", "label"] and len(rows) == len(truth)
    scores = np.array([float(r["score"]) for r in rows])
    labelled = [r["label"] for r in rows]
    assert labelled == ["刷评" if s >= payload["threshold"] else "真实" for s in scores]
    assert np.mean([a == b for a, b in zip(labelled, truth, strict=True)]) >= 0.9

    # --threshold overrides the saved one at scoring; at training it is saved instead of the chosen one.
    res = invoke("score", "--model", model, "--input", fresh, "--output", out, "--threshold", "0.999999")
    assert res.exit_code == 0, res.output
    with out.open(encoding="utf-8") as fh:
        high = [r["label"] for r in csv.DictReader(fh)]
    assert high == ["刷评" if s >= 0.999999 else "真实" for s in scores] and high != labelled
    res = invoke(*train_args(train, model, "--threshold", "0.3"))
    assert res.exit_code == 0, res.output
    assert joblib.load(model)["threshold"] == 0.3 and R.ReviewModel.load(model).inputs == (
        "rating",
        "user",
        "ip",
    )


def test_cli_cv_by_accounts(tmp_path: Path) -> None:
    train = crew_file(tmp_path, seed=7)
    model = tmp_path / "m.joblib"
    res = invoke(*train_args(train, model, "--cv-by-accounts", "--cv", "3"))
    assert res.exit_code == 0, res.output
    # 8 crews (3 accounts on one IP each) and 120 lone reviewers: 128 user–IP components.
    m = re.search(
        r"by user–IP components, 3 folds, 128 groups\): AUC ([0-9.]+) ± [0-9.]+, F1 ([0-9.]+)", res.output
    )
    assert m, res.output
    assert float(m.group(1)) >= 0.85 and float(m.group(2)) >= 0.7  # the texts alone are at chance
    assert R.ReviewModel.load(model).meta["grouped_cv"]["groups_by"] == "user-IP components"
    res = invoke(
        "train",
        "--input",
        train,
        "--text-col",
        "body",
        "--positive",
        "刷评",
        "--model",
        model,
        "--cv-by-accounts",
    )
    assert res.exit_code == 2 and "--cv-by-accounts needs --user-col or --ip-col" in res.output


def test_behaviour_beats_text_when_text_says_little(tmp_path: Path) -> None:
    train, fresh = crew_file(tmp_path, seed=3), crew_file(tmp_path, seed=4)
    cols = {"text": "body", "rating": "stars", "user": "account", "ip": "ip", "label": "label"}
    table, other = R.read_reviews(train, cols)
    with_behaviour = R.train_model(table, other["label"], "刷评")
    text_only = R.train_model(table.texts, other["label"], "刷评")
    test, test_other = R.read_reviews(fresh, cols)
    y = np.array([v == "刷评" for v in test_other["label"]])
    assert roc_auc_score(y, with_behaviour.score(test)) >= 0.95
    assert roc_auc_score(y, text_only.score(test.texts)) < 0.8  # the texts are drawn alike
    assert text_only.stacker is None and text_only.inputs == ()


def test_score_refuses_a_file_without_a_column_the_model_needs(tmp_path: Path) -> None:
    train = crew_file(tmp_path, seed=5)
    model = tmp_path / "m.joblib"
    assert invoke(*train_args(train, model)).exit_code == 0
    with train.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    no_ip = write_csv(
        tmp_path / "no_ip.csv",
        ["body", "stars", "account"],
        [[r["body"], r["stars"], r["account"]] for r in rows],
    )
    out = tmp_path / "s.csv"
    res = invoke("score", "--model", model, "--input", no_ip, "--output", out)
    assert res.exit_code == 1
    assert "missing required column(s) ip" in res.output and "--NAME-col" in res.output
    assert not out.exists()
    # The column under another name: --ip-col or --col maps it.
    renamed = write_csv(
        tmp_path / "renamed.csv",
        ["body", "stars", "account", "addr"],
        [[r["body"], r["stars"], r["account"], r["ip"]] for r in rows],
    )
    res = invoke("score", "--model", model, "--input", renamed, "--output", out, "--ip-col", "addr")
    assert res.exit_code == 0, res.output
    first = out.read_text(encoding="utf-8")
    res = invoke("score", "--model", model, "--input", renamed, "--output", out, "--col", "ip=addr")
    assert res.exit_code == 0, res.output
    assert out.read_text(encoding="utf-8") == first
    # A library caller gets the same refusal.
    with pytest.raises(R.ReviewModelError, match="ip"):
        R.ReviewModel.load(model).score(R.ReviewTable(["好评"], rating=[5], user=["u"]))


def test_bad_behaviour_inputs(tmp_path: Path) -> None:
    train = crew_file(tmp_path, seed=6)
    with train.open(encoding="utf-8") as fh:
        rows = [list(r.values()) for r in csv.DictReader(fh)]
    rows[6][2] = "five"
    bad = write_csv(tmp_path / "bad.csv", ["body", "label", "stars", "account", "ip", "shop", "at"], rows)
    res = invoke(*train_args(bad, tmp_path / "m.joblib"))
    assert res.exit_code == 1 and "data row 7" in res.output and "stars" in res.output
    res = invoke(
        "train",
        "--input",
        train,
        "--text-col",
        "body",
        "--positive",
        "刷评",
        "--model",
        tmp_path / "m.joblib",
        "--time-col",
        "at",
    )
    assert res.exit_code == 1 and "time column needs a user, IP or product" in res.output
    res = invoke(*train_args(train, tmp_path / "m.joblib", "--col", "user=other"))
    assert res.exit_code == 2 and "different columns" in res.output
    assert not (tmp_path / "m.joblib").exists()


def test_best_f1_threshold() -> None:
    y = np.array([1, 1, 0, 1, 0, 0])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.2, 0.1])
    # Positives at ≥ 0.6 give TP 3, FP 1: F1 6/7, the best; the cut falls halfway to the next score.
    assert R.best_f1_threshold(y, s) == pytest.approx(0.4)
    assert R.best_f1_threshold(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(0.5)


@needs_dianping
def test_dianping_held_out_accounts_beat_the_five_star_rule() -> None:
    # A behaviour check, not the benchmark (bench/bench_reviews.py runs the 5-fold grouped CV): train on
    # half of the user–IP components, score the other half as a file of its own, label at the threshold
    # chosen on the training half, and compare with "five stars ⇒ fake" on the same reviews.
    table, other = R.read_reviews(
        DIANPING, {"text": "text", "rating": "star", "user": "user", "ip": "ip", "label": "label"}
    )
    groups = R.account_groups(table)
    assert groups is not None
    components = np.random.default_rng(0).permutation(np.unique(groups))
    train_rows = np.flatnonzero(np.isin(groups, components[: len(components) // 2]))
    test_rows = np.flatnonzero(~np.isin(groups, components[: len(components) // 2]))
    model = R.train_model(table.take(train_rows), [other["label"][i] for i in train_rows], "+")
    test = table.take(test_rows)
    y = np.array([other["label"][i] == "+" for i in test_rows])
    scores = model.score(test)
    five_stars = f1_score(y, np.asarray(test.rating) >= 5)
    assert f1_score(y, scores >= model.threshold) > five_stars + 0.02
    assert roc_auc_score(y, scores) >= 0.85


# ----------------------------------------------------------------------------------------------------
# Near-duplicate templates (MinHash + LSH)
# ----------------------------------------------------------------------------------------------------

_VOCAB = """room staff clean bed breakfast location view quiet noisy pool lobby elevator price friendly rude
shower towel coffee street parking airport downtown night window carpet service desk upgrade
checkin checkout suite bar restaurant gym wifi walk museum river lake noise comfortable small"""
WORDS = _VOCAB.split()


def random_review(rng: random.Random, n: int = 60) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def edit(text: str, rng: random.Random, n_edits: int = 2) -> str:
    """What a farm does to a template: swap a word or two, change punctuation and case."""
    words = text.split()
    for _ in range(n_edits):
        words[rng.randrange(len(words))] = rng.choice(WORDS)
    return (" ".join(words)).replace(".", "!!!").upper() if rng.random() < 0.5 else " ".join(words)


def test_minhash_finds_planted_english_templates() -> None:
    rng = random.Random(11)
    template = random_review(rng, 80)
    unrelated = [random_review(rng) for _ in range(200)]
    planted = [template] + [edit(template, rng) for _ in range(7)]
    texts = unrelated[:100] + planted + unrelated[100:]
    groups = R.find_template_groups(texts, threshold=0.7)
    assert len(groups) == 1
    assert sorted(groups[0].members) == list(range(100, 108))
    assert min(groups[0].similarity) >= 0.7


def test_minhash_finds_planted_chinese_templates_not_genuine() -> None:
    rng = random.Random(12)
    base = "宝贝收到了，质量非常好，物流超快，卖家服务态度一级棒，衣服穿着很舒服，五星好评！"
    copies = [
        base,
        base.replace("非常", "特别"),
        base.replace("！", "!!"),
        base.replace("衣服穿着", "裙子穿着"),
        "  " + base + "～",
    ]
    texts = GENUINE[:15] + copies + GENUINE[15:]
    rng.shuffle(texts)
    groups = R.find_template_groups(texts, threshold=0.7)
    assert len(groups) == 1
    assert sorted(texts[m] for m in groups[0].members) == sorted(copies)


def test_lsh_banding_catches_pairs_at_the_threshold() -> None:
    b, r = R.lsh_params(0.8, 128)
    assert b * r <= 128
    assert 1 - (1 - 0.8**r) ** b >= 0.95  # a pair at the threshold is a candidate with high probability
    assert 1 - (1 - 0.3**r) ** b < 0.01  # a loosely related pair rarely is


def test_cli_duplicates_findings_with_authors(tmp_path: Path) -> None:
    rng = random.Random(13)
    template = random_review(rng, 70)
    rows = [[f"r{i}", f"user{i}", random_review(rng)] for i in range(40)]
    farm = [[f"f{i}", f"buyer{i % 3}", edit(template, rng, 1)] for i in range(6)]
    rows[10:10] = farm
    p = write_csv(tmp_path / "rev.csv", ["rid", "author", "body"], rows)
    out = tmp_path / "groups.json"
    res = invoke(
        "duplicates",
        "--input",
        p,
        "--text-col",
        "body",
        "--id-col",
        "rid",
        "--author-col",
        "author",
        "--threshold",
        "0.8",
        "--output",
        out,
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["n_reviews"] == 46 and doc["n_groups"] == 1
    f = doc["findings"][0]
    assert f["behaviour"] == "fake_review" and f["subject_kind"] == "platform_account"
    assert sorted(f["subject_ids"]) == ["buyer0", "buyer1", "buyer2"]
    assert sorted(f["evidence"]["reviews"]) == [f"f{i}" for i in range(6)]
    assert 0.0 < f["score"] <= 1.0

    # Without authors the subjects are the reviews, named by 1-based data row.
    res = invoke("duplicates", "--input", p, "--text-col", "body", "--output", out)
    assert res.exit_code == 0, res.output
    f = json.loads(out.read_text(encoding="utf-8"))["findings"][0]
    assert f["subject_kind"] == "review"
    assert sorted(f["subject_ids"], key=int) == [str(i) for i in range(11, 17)]


def test_cli_duplicates_reads_columns_through_col(tmp_path: Path) -> None:
    rng = random.Random(17)
    template = random_review(rng, 70)
    rows = [[f"r{i}", f"user{i}", random_review(rng)] for i in range(30)]
    rows[5:5] = [[f"f{i}", f"buyer{i % 2}", edit(template, rng, 1)] for i in range(5)]
    p = write_csv(tmp_path / "rev.csv", ["rid", "uid", "body"], rows)
    by_option, by_col = tmp_path / "a.json", tmp_path / "b.json"
    res = invoke(
        "duplicates",
        "--input",
        p,
        "--text-col",
        "body",
        "--id-col",
        "rid",
        "--author-col",
        "uid",
        "--output",
        by_option,
    )
    assert res.exit_code == 0, res.output
    res = invoke(
        "duplicates",
        "--input",
        p,
        "--col",
        "text=body",
        "--col",
        "id=rid",
        "--col",
        "author=uid",
        "--output",
        by_col,
    )
    assert res.exit_code == 0, res.output
    a, b = (json.loads(x.read_text(encoding="utf-8"))["findings"] for x in (by_option, by_col))
    assert a == b and sorted(a[0]["subject_ids"]) == ["buyer0", "buyer1"]
    # the two ways naming different columns, or a name the command does not read: refused before any work
    res = invoke("duplicates", "--input", p, "--text-col", "body", "--col", "text=uid", "--output", by_col)
    assert res.exit_code == 2 and "--text-col" in res.output
    res = invoke("duplicates", "--input", p, "--col", "rating=body", "--output", by_col)
    assert res.exit_code == 2 and "rating" in res.output


def test_cli_duplicates_repeated_id_is_an_error(tmp_path: Path) -> None:
    p = write_csv(tmp_path / "rev.csv", ["rid", "body"], [["a", "great hotel"], ["a", "bad hotel"]])
    res = invoke(
        "duplicates", "--input", p, "--text-col", "body", "--id-col", "rid", "--output", tmp_path / "g.json"
    )
    assert res.exit_code == 1 and "rid" in res.output
