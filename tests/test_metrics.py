"""Tests for tfrec.evaluation.metrics against a literal per-user reference."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest

from tfrec.evaluation import ranking_metrics, rating_metrics

METRICS = ("recall", "ndcg", "hr", "map", "mrr", "precision", "coverage")


def reference_ranking(users, recommended, test, n_catalog, ks):
    """PROTOCOLS.md formulas, written out one user at a time."""
    truth: dict = {}
    for u, i in zip(test["user_id"], test["item_id"]):
        truth.setdefault(u, set()).add(i)
    out = {}
    for k in ks:
        sums = dict.fromkeys(METRICS[:-1], 0.0)
        covered = set()
        for u, row in zip(users, recommended):
            t = truth[u]
            top = list(row[:k])
            hit = [1 if (x != "" and x in t) else 0 for x in top]
            covered.update(x for x in top if x != "")
            sums["recall"] += sum(hit) / len(t)
            sums["hr"] += 1.0 if any(hit) else 0.0
            sums["precision"] += sum(hit) / k
            dcg = sum(h / math.log2(i + 1) for i, h in enumerate(hit, start=1))
            idcg = sum(1 / math.log2(i + 1) for i in range(1, min(k, len(t)) + 1))
            sums["ndcg"] += dcg / idcg
            ap = 0.0
            for i in range(1, k + 1):
                if hit[i - 1]:
                    ap += (sum(hit[:i]) / i) * hit[i - 1]
            sums["map"] += ap / min(k, len(t))
            rr = 0.0
            for i, h in enumerate(hit, start=1):
                if h:
                    rr = 1.0 / i
                    break
            sums["mrr"] += rr
        for name, v in sums.items():
            out[f"{name}@{k}"] = v / len(users)
        out[f"coverage@{k}"] = len(covered) / n_catalog
    out["users"] = len(users)
    return out


def random_case(seed, n_users=60, n_items=80, kmax=20, extra_users=True, obj=False):
    rng = np.random.default_rng(seed)
    items = np.array([f"item{j}" for j in range(n_items)])
    unreachable = np.array([f"ghost{j}" for j in range(10)])
    users = np.array([f"user{u}" for u in range(n_users)], dtype=object)
    rows, rec = [], []
    for u in users:
        n_t = int(rng.choice([1, 1, 2, 3, 5, 12, 30]))
        pool = np.concatenate([items, unreachable])
        t = rng.choice(pool, size=n_t, replace=False)
        if rng.random() < 0.3:  # duplicate test rows
            t = np.concatenate([t, rng.choice(t, size=3)])
        rows += [(u, i) for i in t]
        # a mix of test items (hits) and others, no repeats
        n_fill = int(rng.integers(0, kmax + 1))
        cand = rng.permutation(items)[:n_fill].tolist()
        r = cand + [""] * (kmax - n_fill)
        if rng.random() < 0.2:  # an empty slot in the middle
            r[int(rng.integers(0, kmax))] = ""
        rec.append(r)
    if extra_users:  # test rows of users that are not evaluated: ignored
        rows += [("stranger", "item1"), ("stranger", "item2")]
    rng.shuffle(rows)
    test = pd.DataFrame(rows, columns=["user_id", "item_id"]).astype(str)
    rec = np.array(rec, dtype=object if obj else str)
    return users, rec, test, n_items


def assert_close(got, want, tol=1e-12):
    assert set(got) == set(want)
    for key, v in want.items():
        assert abs(got[key] - v) <= tol, (key, got[key], v)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("obj", [False, True])
def test_matches_reference_random(seed, obj):
    users, rec, test, n_items = random_case(seed, obj=obj)
    ks = (1, 3, 5, 10, 20)
    got = ranking_metrics(users, rec, test, n_items, ks=ks)
    want = reference_ranking(users, rec, test, n_items, ks)
    assert_close(got, want)


@pytest.mark.parametrize("seed", range(4))
def test_matches_reference_many_hits(seed):
    # rankings built mostly from test items so that MAP/NDCG get many hits
    rng = np.random.default_rng(100 + seed)
    items = [f"i{j:03d}" for j in range(40)]
    users = np.array([f"u{u}" for u in range(30)])
    rows, rec = [], []
    for u in users:
        t = list(rng.choice(items, size=int(rng.integers(1, 25)), replace=False))
        rows += [(u, i) for i in t] + [(u, "never-recommended")]
        others = [i for i in items if i not in t]
        r = list(rng.permutation(t + others[: int(rng.integers(0, 10))]))[:15]
        rec.append(r + [""] * (15 - len(r)))
    test = pd.DataFrame(rows, columns=["user_id", "item_id"])
    rec = np.array(rec)
    ks = (2, 7, 15)
    got = ranking_metrics(users, rec, test, 40, ks=ks)
    assert_close(got, reference_ranking(users, rec, test, 40, ks))


def test_hand_computed():
    users = np.array(["a"], dtype=object)
    rec = np.array([["x", "y", "z"]])
    test = pd.DataFrame({"user_id": ["a", "a", "a"], "item_id": ["x", "z", "x"]})
    m = ranking_metrics(users, rec, test, n_catalog=6, ks=(3,))
    assert m["users"] == 1
    assert m["recall@3"] == pytest.approx(1.0, abs=1e-15)
    assert m["hr@3"] == 1.0
    assert m["ndcg@3"] == pytest.approx((1 + 0.5) / (1 + 1 / math.log2(3)), abs=1e-15)
    assert m["map@3"] == pytest.approx(0.5 * (1 + 2 / 3), abs=1e-15)
    assert m["mrr@3"] == 1.0
    assert m["precision@3"] == pytest.approx(2 / 3, abs=1e-15)
    assert m["coverage@3"] == pytest.approx(3 / 6, abs=1e-15)


def test_hand_computed_two_users_unreachable_and_empty():
    users = np.array(["a", "b"])
    rec = np.array([["p", "q", ""], ["q", "r", "s"]])
    # a: T={q, ghost} (ghost unreachable); b: T={s}
    test = pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["q", "ghost", "s"]})
    m = ranking_metrics(users, rec, test, n_catalog=8, ks=(1, 3))
    assert m["recall@1"] == 0.0 and m["hr@1"] == 0.0 and m["mrr@1"] == 0.0
    assert m["recall@3"] == pytest.approx((0.5 + 1.0) / 2)
    assert m["hr@3"] == 1.0
    assert m["mrr@3"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    idcg_a = 1 + 1 / math.log2(3)
    ndcg_a = (1 / math.log2(3)) / idcg_a
    ndcg_b = (1 / math.log2(4)) / 1.0
    assert m["ndcg@3"] == pytest.approx((ndcg_a + ndcg_b) / 2)
    assert m["map@3"] == pytest.approx(((1 / 2) / 2 + (1 / 3) / 1) / 2)
    assert m["coverage@1"] == pytest.approx(2 / 8)  # p, q
    assert m["coverage@3"] == pytest.approx(4 / 8)  # p, q, r, s ("" excluded)


def test_protocol_s_single_target():
    users = np.array(["a", "b", "c"])
    rec = np.array([[f"i{j}" for j in range(10)]] * 3)
    test = pd.DataFrame({"user_id": ["a", "b", "c"], "item_id": ["i0", "i4", "i99"]})
    m = ranking_metrics(users, rec, test, n_catalog=100, ks=(10,))
    assert m["hr@10"] == pytest.approx(2 / 3)
    assert m["mrr@10"] == pytest.approx((1 + 1 / 5) / 3)


def test_empty_string_test_item_is_never_a_hit():
    users = np.array(["a"])
    rec = np.array([["", "x"]])
    test = pd.DataFrame({"user_id": ["a", "a"], "item_id": ["", "x"]})
    m = ranking_metrics(users, rec, test, n_catalog=2, ks=(2,))
    assert m["recall@2"] == pytest.approx(0.5)
    assert m["mrr@2"] == pytest.approx(0.5)
    assert m["coverage@2"] == pytest.approx(0.5)


def test_extra_columns_are_ignored_and_kmax_may_exceed_ks():
    users = np.array(["a"])
    rec = np.array([["x", "y", "z", "w"]])
    test = pd.DataFrame({"user_id": ["a"], "item_id": ["w"], "rating": [5]})
    m = ranking_metrics(users, rec, test, n_catalog=4, ks=(2,))
    assert m["recall@2"] == 0.0
    assert set(m) == {f"{n}@2" for n in METRICS} | {"users"}


def test_non_latin1_ids():
    users = np.array(["ü"])
    rec = np.array([["電影", "фильм", "film"]])
    test = pd.DataFrame({"user_id": ["ü"], "item_id": ["фильм"]})
    m = ranking_metrics(users, rec, test, n_catalog=3, ks=(3,))
    assert m["mrr@3"] == pytest.approx(0.5)


def test_long_ids_span_several_words():
    base = "x" * 30
    users = np.array(["a"])
    rec = np.array([[base + "1", base + "2", base + "3"]])
    test = pd.DataFrame({"user_id": ["a"], "item_id": [base + "3"]})
    m = ranking_metrics(users, rec, test, n_catalog=3, ks=(3,))
    assert m["mrr@3"] == pytest.approx(1 / 3)
    assert m["coverage@3"] == pytest.approx(1.0)


def test_errors():
    users = np.array(["a", "b"])
    rec = np.array([["x", "y"], ["y", "z"]])
    test = pd.DataFrame({"user_id": ["a", "b"], "item_id": ["x", "z"]})
    with pytest.raises(ValueError, match="max\\(ks\\)"):
        ranking_metrics(users, rec, test, 3, ks=(1, 3))
    with pytest.raises(ValueError, match="rows"):
        ranking_metrics(users[:1], rec, test, 3, ks=(2,))
    with pytest.raises(ValueError, match="2-D"):
        ranking_metrics(users, rec[0], test, 3, ks=(1,))
    with pytest.raises(ValueError, match="no test rows"):
        ranking_metrics(
            np.array(["a", "c"]), rec, test, 3, ks=(2,)
        )
    with pytest.raises(ValueError, match="unique"):
        ranking_metrics(np.array(["a", "a"]), rec, test, 3, ks=(2,))
    with pytest.raises(ValueError, match="more than once"):
        ranking_metrics(users, np.array([["x", "x"], ["y", "z"]]), test, 3, ks=(2,))
    with pytest.raises(ValueError, match="column"):
        ranking_metrics(users, rec, test.rename(columns={"item_id": "item"}), 3, ks=(2,))
    with pytest.raises(ValueError, match="ks"):
        ranking_metrics(users, rec, test, 3, ks=(0,))
    with pytest.raises(ValueError, match="n_catalog"):
        ranking_metrics(users, rec, test, 0, ks=(2,))


def test_none_is_an_empty_slot_in_object_arrays():
    users = np.array(["a"], dtype=object)
    rec = np.array([[None, "x", None]], dtype=object)
    test = pd.DataFrame({"user_id": ["a"], "item_id": ["x"]})
    m = ranking_metrics(users, rec, test, n_catalog=2, ks=(3,))
    assert m["mrr@3"] == pytest.approx(0.5)
    assert m["coverage@3"] == pytest.approx(0.5)


def test_numeric_test_items_with_string_recommendations_raise():
    users = np.array(["a"])
    rec = np.array([["1", "2"]])
    test = pd.DataFrame({"user_id": ["a"], "item_id": [1]})
    with pytest.raises(ValueError, match="str"):
        ranking_metrics(users, rec, test, n_catalog=2, ks=(2,))


def test_duplicate_empty_slots_are_allowed():
    users = np.array(["a"])
    rec = np.array([["x", "", ""]])
    test = pd.DataFrame({"user_id": ["a"], "item_id": ["x"]})
    m = ranking_metrics(users, rec, test, n_catalog=1, ks=(3,))
    assert m["ndcg@3"] == pytest.approx(1.0) and m["coverage@3"] == pytest.approx(1.0)


def _large_case(n_users, k, n_items, mean_test, seed=0):
    rng = np.random.default_rng(seed)
    items = np.array([str(j) for j in range(n_items)])
    users = np.array([f"u{u}" for u in range(n_users)], dtype=object)
    # distinct items per row: random offset + random stride coprime to n_items
    start = rng.integers(0, n_items, n_users)[:, None]
    rec = items[(start + 7 * np.arange(k)[None, :]) % n_items]
    n_test = rng.integers(1, 2 * mean_test, n_users)
    test = pd.DataFrame(
        {
            "user_id": np.repeat(users, n_test).astype(str),
            "item_id": items[rng.integers(0, n_items, int(n_test.sum()))].astype(str),
        }
    )
    return users, rec, test


def test_scale_50k_users():
    users, rec, test = _large_case(50_000, 20, 5_000, 5)
    m = ranking_metrics(users, rec, test, n_catalog=5_000, ks=(10, 20))
    assert m["users"] == 50_000
    for k in (10, 20):
        for name in METRICS:
            assert 0.0 <= m[f"{name}@{k}"] <= 1.0


@pytest.mark.slow
def test_100k_users_match_reference_and_report_timing(capsys):
    """At 100k users x K=20 (fixed-width unicode ids: the packed-word factorisation) the
    vectorised metrics equal the per-user reference; the time is printed, not asserted."""
    users, rec, test = _large_case(100_000, 20, 20_000, 5, seed=1)
    # Random test items rarely hit: add 0-3 of each user's own recommendations, at random
    # ranks, so that every metric (NDCG, MAP and MRR positions included) is exercised.
    rng = np.random.default_rng(2)
    row = np.repeat(np.arange(len(users)), rng.integers(0, 4, len(users)))
    hits = pd.DataFrame({"user_id": users[row].astype(str), "item_id": rec[row, rng.integers(0, 20, len(row))].astype(str)})
    test = pd.concat([test, hits], ignore_index=True)
    ranking_metrics(users[:10], rec[:10], test[test.user_id.isin(users[:10])], 20_000)
    t0 = time.perf_counter()
    got = ranking_metrics(users, rec, test, n_catalog=20_000, ks=(10, 20))
    dt = time.perf_counter() - t0
    assert_close(got, reference_ranking(users, rec, test, 20_000, (10, 20)), tol=1e-10)
    assert got["users"] == 100_000 and 0.5 < got["hr@20"] < 1.0 and got["mrr@20"] > 0.1
    with capsys.disabled():
        print(
            f"\nranking_metrics: {len(users):,} users x K=20, {len(test):,} test rows: "
            f"{dt * 1000:.0f} ms"
        )


def test_rating_metrics():
    p = np.array([3.5, 4.0, 2.0, 5.5])
    y = np.array([4.0, 4.0, 1.0, 5.0])
    m = rating_metrics(p, y)
    err = p - y
    assert m["rmse"] == pytest.approx(math.sqrt(np.mean(err**2)), abs=1e-15)
    assert m["mae"] == pytest.approx(np.mean(np.abs(err)), abs=1e-15)
    # protocol R: clip to [1, 5] and fall back to the train global mean
    p2 = np.array([np.nan, 6.0, 0.2])
    y2 = np.array([3.0, 5.0, 1.0])
    m2 = rating_metrics(p2, y2, clip=(1, 5), fallback=3.5)
    assert m2["mae"] == pytest.approx((0.5 + 0 + 0) / 3)
    assert m2["rmse"] == pytest.approx(math.sqrt(0.25 / 3))
    with pytest.raises(ValueError, match="non-finite"):
        rating_metrics(p2, y2)
    with pytest.raises(ValueError, match="shape"):
        rating_metrics(p, y[:3])
    with pytest.raises(ValueError):
        rating_metrics(np.array([]), np.array([]))
