"""The benchmark suite: its output, and its peers against the PROTOCOLS.md peer rows."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tfrec.bench.peers import PEERS, make_peer, top_k_indices
from tfrec.evaluation import ranking_metrics


def _ranking(peer, split, k: int = 20) -> dict[str, float]:
    from tfrec.data.dataset import sorted_ids

    users = sorted_ids(split.test["user_id"])
    recommended = peer.recommend(users, k=k)
    return ranking_metrics(users, recommended, split.test[["user_id", "item_id"]], n_catalog=len(peer.item_ids), ks=(10, 20))


# ------------------------------------------------------------- the whole run
@pytest.fixture(scope="module")
def demo_bench(tmp_path_factory):
    from tfrec.bench import run_bench

    out = tmp_path_factory.mktemp("bench")
    document = run_bench("demo", "T", "popularity", "ease", out_dir=out, json_path=out / "copy.json", verbose=0)
    return out, document


@pytest.mark.slow
def test_bench_on_demo_writes_json_markdown_chart_and_hparams(demo_bench):
    out, _ = demo_bench
    saved = json.loads((out / "bench.json").read_text())
    assert json.loads((out / "copy.json").read_text()) == saved
    assert {"data", "data_summary", "protocols", "machine", "rows", "notes", "command", "created"} <= set(saved)
    rows = {(r["kind"], r["model"]): r for r in saved["rows"]}
    assert set(rows) == {("tfrec", "popularity"), ("peer", "ease")}
    for row in rows.values():
        assert row["status"] == "ok" and row["protocol"] == "T"
        for key in ("recall@10", "recall@20", "ndcg@10", "hr@10", "map@10", "coverage@10", "fit_s", "users_per_s",
                    "latency_p50_ms", "latency_p99_ms", "peak_mb", "base_mb"):
            assert isinstance(row[key], float), key
        assert 0.0 <= row["ndcg@10"] <= 1.0 and row["peak_mb"] >= row["base_mb"] > 0
        assert row["latency_p99_ms"] >= row["latency_p50_ms"] > 0
    assert (out / "savedmodels" / "popularity-T" / "1" / "saved_model.pb").is_file()
    assert rows[("tfrec", "popularity")]["savedmodel"].endswith("popularity-T/1")
    table = (out / "bench.md").read_text()
    assert "| tfrec popularity |" in table and "NDCG@10 / ease" in table
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    runs = list((out / "runs" / "hparams").rglob("events.out.tfevents*"))
    assert {p.parent.name for p in runs} >= {"T-tfrec-popularity", "T-peer-ease"}
    fits = [p.name for p in (out / "runs" / "fits").iterdir() if p.is_dir()]
    assert len(fits) == 1 and fits[0].startswith("popularity-demo-temporal-")  # the fit's run is named by data and split


@pytest.mark.slow
def test_tfrec_popularity_equals_the_numpy_mostpop_peer_on_demo(demo, demo_split, demo_bench):
    _, document = demo_bench
    tfrec_row = next(r for r in document["rows"] if r["model"] == "popularity")
    peer = make_peer("mostpop").fit(demo_split.train)
    metrics = _ranking(peer, demo_split)
    for key in ("recall@10", "recall@20", "ndcg@10", "hr@10", "map@10", "coverage@10"):
        assert tfrec_row[key] == pytest.approx(metrics[key], abs=1e-12), key


# ---------------------------------------------------------- peers vs PROTOCOLS
@pytest.fixture(scope="module")
def ml100k_t(ml100k):
    from tfrec.data import make_split

    return make_split(ml100k, "temporal")


@pytest.fixture(scope="module")
def ml100k_s(ml100k):
    from tfrec.data import make_split

    return make_split(ml100k, "leave-last")


def test_numpy_ease_reproduces_the_protocol_t_row(ml100k_t):
    metrics = _ranking(make_peer("ease").fit(ml100k_t.train), ml100k_t)
    assert metrics["ndcg@10"] == pytest.approx(0.1976, abs=5e-4)
    expected = {"recall@10": 0.1150, "recall@20": 0.1969, "hr@10": 0.7211, "map@10": 0.1032, "coverage@10": 0.2595}
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=5e-4), key


def test_mostpop_peer_gives_the_mostpop_rows(ml100k_t, ml100k_s):
    t = _ranking(make_peer("mostpop").fit(ml100k_t.train), ml100k_t)
    expected = {"recall@10": 0.0601, "recall@20": 0.0973, "ndcg@10": 0.1162, "hr@10": 0.5376, "map@10": 0.0537, "coverage@10": 0.0447}
    for key, value in expected.items():
        assert t[key] == pytest.approx(value, abs=5e-5), key
    s = _ranking(make_peer("mostpop").fit(ml100k_s.train), ml100k_s)
    assert (s["hr@10"], s["mrr@10"]) == pytest.approx((0.0498, 0.0179), abs=5e-5)


def test_covisitation_reference_gives_the_protocol_s_row(ml100k_s):
    s = _ranking(make_peer("covisit_ref").fit(ml100k_s.train), ml100k_s)
    assert (s["hr@10"], s["mrr@10"]) == pytest.approx((0.1379, 0.0519), abs=5e-5)


def test_implicit_cosine_gives_the_itemknn_row(ml100k_t):
    pytest.importorskip("implicit")
    t = _ranking(make_peer("implicit_cosine").fit(ml100k_t.train), ml100k_t)
    assert (t["ndcg@10"], t["recall@10"], t["coverage@10"]) == pytest.approx((0.1853, 0.1087, 0.1210), abs=5e-5)


def test_surprise_baseline_gives_the_protocol_r_row(ml100k):
    pytest.importorskip("surprise")
    from tfrec.data import make_split
    from tfrec.evaluation import rating_metrics

    folds = []
    for fold in ("u1", "u2", "u3", "u4", "u5"):
        split = make_split(ml100k, fold)
        peer = make_peer("surprise_baseline").fit(split.train)
        low, mean, high = peer.rating_range
        predictions = peer.predict(split.test["user_id"].to_numpy(), split.test["item_id"].to_numpy())
        folds.append(rating_metrics(predictions, split.test["rating"].to_numpy(), clip=(low, high), fallback=mean))
    assert np.mean([f["rmse"] for f in folds]) == pytest.approx(0.9457, abs=5e-5)
    assert np.mean([f["mae"] for f in folds]) == pytest.approx(0.7499, abs=5e-5)


# ------------------------------------------------------------------ helpers
def test_top_k_indices_equals_a_stable_argsort_with_ties():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, (50, 30)).astype(np.float64)
    scores[rng.random(scores.shape) < 0.2] = -np.inf
    for k in (1, 5, 29, 30):
        assert np.array_equal(top_k_indices(scores, k), np.argsort(-scores, axis=1, kind="stable")[:, :k])


def test_peers_exclude_train_items_and_fall_back_to_popularity(demo_split):
    peer = make_peer("ease").fit(demo_split.train)
    frame = demo_split.train.interactions
    user = frame["user_id"].iloc[0]
    recommended = peer.recommend([user, "no-such-user"], k=10)
    assert not set(recommended[0]) & set(frame.loc[frame["user_id"] == user, "item_id"])
    assert list(recommended[1]) == list(make_peer("mostpop").fit(demo_split.train).recommend(["no-such-user"], k=10)[0])


def test_every_peer_names_its_protocols():
    assert all(cls.protocols and set(cls.protocols) <= {"R", "T", "S"} and cls.label for cls in PEERS.values())


@pytest.mark.parametrize("name", ["mf", "two_tower"])
@pytest.mark.slow
def test_serving_vs_numpy_uses_embeddings_that_reproduce_the_savedmodel(name, fitted):
    from tfrec.bench.runner import serving_vs_numpy

    _, reloaded, _ = fitted.exported(name)
    result = serving_vs_numpy(fitted.model(name), reloaded, repeats=1)
    assert result is not None, f"no user/item embedding matrices found in {name}"
    assert result["topk_agreement"] >= 0.95
    assert result["numpy_masked_ms"] > 0 and result["savedmodel_signature_ms"] > 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["bench", "--protocol", "X"], "unknown protocol 'X'"),
        (["bench", "--peers", "nope"], "unknown peer 'nope'"),
        (["bench", "--models", "nope"], "unknown model 'nope'"),
        (["bench", "--scale"], "--scale without sizes"),
        (["bench", "--repeat", "3"], "--repeat applies to --scale runs"),
        (["bench", "--scale", "1K", "--models", "tfidf:min_df=x"], "min_df"),
    ],
)
def test_bench_cli_mistakes_are_one_line_and_exit_2(argv, message, capsys, tmp_path):
    from tfrec.cli import main

    assert main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# ------------------------------------------------------------- scale runs
@pytest.fixture(scope="module")
def scale_with_peer(tmp_path_factory):
    """A scale run of tfidf next to its fit-time peer on tiny synthetic data, in-process
    (the child-process path is the one ``demo_bench`` runs)."""
    from tfrec.bench import run_scale

    out = tmp_path_factory.mktemp("scale")
    document = run_scale([3000], "tfidf", "paired", out_dir=out, isolate=False, speed_users=64, verbose=0)
    return out, document


@pytest.mark.slow
def test_scale_run_fits_each_model_next_to_its_peer_with_the_ratio(scale_with_peer):
    out, document = scale_with_peer
    assert json.loads((out / "scale.json").read_text())["rows"] == json.loads(json.dumps(document["rows"], default=str))
    rows = {(r["kind"], r["model"]): r for r in document["rows"]}
    assert set(rows) == {("tfrec", "tfidf"), ("peer", "sklearn_tfidf")}
    model, peer = rows[("tfrec", "tfidf")], rows[("peer", "sklearn_tfidf")]
    assert model["status"] == peer["status"] == "ok" and model["size"] == peer["size"] == 3000
    assert model["peer"] == "sklearn_tfidf" and model["peer_fit_s"] == peer["fit_s"] > 0
    assert model["fit_ratio"] == pytest.approx(model["fit_s"] / peer["fit_s"])
    for row in (model, peer):
        assert row["fit_mb"] >= 0 and row["load_s"] > 0 and row["data"]["sessions"] > 0
    table = (out / "scale.md").read_text()
    assert "| model | interactions | tfrec fit s | peer | peer fit s | ratio | tfrec fit MiB | peer fit MiB |" in table
    assert f"| `tfidf` | 3,000 | {model['fit_s']:.2f} | {peer['label']} | {peer['fit_s']:.2f} | {model['fit_ratio']:.2f}x |" in table
    assert "fit s / peer" in table and "### Data" in table


@pytest.mark.slow
def test_scale_run_with_holdout_ranks_a_sample_of_test_users_for_model_and_peer(tmp_path):
    """--holdout: both sides fit on the temporal split's train part and are ranked on the
    same seeded sample of test users, with the metric code of the protocol runs."""
    from tfrec.bench import run_scale
    from tfrec.bench.runner import holdout_split
    from tfrec.data import load_data, make_split

    document = run_scale([3000], "popularity", "mostpop", out_dir=tmp_path, isolate=False, speed_users=64, verbose=0, holdout=True)
    rows = {r["kind"]: r for r in document["rows"]}
    assert rows["tfrec"]["status"] == rows["peer"]["status"] == "ok"
    assert rows["tfrec"]["ndcg@10"] == pytest.approx(rows["peer"]["ndcg@10"]), "popularity and MostPop rank alike"
    assert "temporal hold-out" in rows["tfrec"]["split_note"]
    table = (tmp_path / "scale.md").read_text()
    assert "| NDCG@10 | R@10 |" in table and f"{rows['tfrec']['ndcg@10']:.4f}" in table
    data = load_data("synthetic:3000")
    full, sampled = make_split(data, "temporal"), holdout_split(data, max_users=5, seed=1)
    users = set(sampled.test["user_id"])
    assert len(users) == 5 and users <= set(full.test["user_id"]) and sampled.train.interactions.equals(full.train.interactions)
    assert holdout_split(data, max_users=5, seed=1).test.equals(sampled.test), "the sample is seeded"


def test_scale_run_without_entries_measures_the_data_generator(tmp_path):
    from tfrec.bench import run_scale

    document = run_scale([2000, 3000], "none", "none", out_dir=tmp_path, isolate=False, verbose=0)
    assert [(r["kind"], r["size"], r["data"]["interactions"]) for r in document["rows"]] == [("data", 2000, 2000), ("data", 3000, 3000)]
    assert all(r["load_s"] > 0 and r["load_peak_mb"] >= 0 for r in document["rows"])
    table = (tmp_path / "scale.md").read_text()
    assert "| 3,000 | 3,000 |" in table and "tfrec fit s" not in table


@pytest.mark.slow
@pytest.mark.parametrize("name", ["covisit", "tfidf"])
def test_fit_time_peers_recommend_what_the_model_recommends(name, fitted, demo_split):
    """The peers that time tfidf's and covisit's fit compute the same model: equal top-10."""
    from tfrec.bench.peers import FIT_PEER
    from tfrec.serving import ServedModel

    served = ServedModel.from_model(fitted.model(name))
    peer = make_peer(FIT_PEER[name]).fit(demo_split.train)
    item_ids, _ = served.recommend(peer.user_ids, k=10)
    assert np.array_equal(np.asarray(item_ids).astype(str), peer.recommend(peer.user_ids, k=10).astype(str))


def test_models_variants_and_paired_peers():
    from tfrec.bench.peers import PEERS, peers_for
    from tfrec.bench.runner import (
        resolve_models,
        resolve_peers,
        scale_entries,
        split_entry,
    )

    assert split_entry("tfidf:min_df=2:sublinear_tf=true") == ("tfidf", {"min_df": 2, "sublinear_tf": True})
    assert resolve_models("tfidf,item_knn,tfidf:min_df=2") == ["tfidf", "item_knn", "tfidf:min_df=2"]
    with pytest.raises(ValueError, match="no parameter 'nope'"):
        resolve_models("item_knn:nope=1")
    models = ["tfidf", "covisit", "item_knn", "item_knn:shrinkage=5", "mf"]
    assert resolve_peers("paired", models) == ["sklearn_tfidf", "numpy_covisit", "implicit_cosine", "implicit_als"]
    assert resolve_peers("paired", ["user_knn"]) == []  # no fit-time peer
    assert scale_entries(models, ["implicit_cosine", "ease"]) == [
        ("tfrec", "tfidf"), ("tfrec", "covisit"), ("tfrec", "item_knn"), ("peer", "implicit_cosine"), ("tfrec", "item_knn:shrinkage=5"),
        ("tfrec", "mf"), ("peer", "ease"),
    ]
    opt_in = {key for key, cls in PEERS.items() if cls.opt_in}
    assert opt_in == {"sklearn_tfidf", "numpy_covisit"}
    assert not opt_in & set(peers_for("T") + peers_for("S"))  # the protocol runs' default peers are unchanged
    assert "numpy_covisit" in peers_for("S", ["numpy_covisit"])


def test_peak_window_measures_growth_and_keeps_the_process_peak():
    from tfrec.bench.runner import peak_growth_mb, peak_rss_mb, start_peak_window

    before = peak_rss_mb()
    window = start_peak_window()
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    assert peak_growth_mb(window) >= 60
    del block
    assert peak_rss_mb() >= before


def test_scale_report_draws_the_fit_time_curve(tmp_path):
    from tfrec.bench.report import write_scale

    rows = [
        {"kind": kind, "model": model, "label": label, "status": "ok", "size": size, "fit_s": seconds, "data": {}}
        for kind, model, label, points in (
            ("tfrec", "item_knn", "tfrec item_knn", ((1_000_000, 2.0), (5_000_000, 7.6))),
            ("peer", "implicit_cosine", "ItemKNN (implicit)", ((1_000_000, 1.0), (5_000_000, 5.3))),
        )
        for size, seconds in points
    ]
    document = {"kind": "scale", "sizes": [1_000_000, 5_000_000], "created": "now", "max_seconds": 900, "max_memory_gb": 16, "rows": rows}
    write_scale(document, tmp_path)
    assert (tmp_path / "scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![fit time against data size](scale.png)" in (tmp_path / "scale.md").read_text()
