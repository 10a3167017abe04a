"""Co-visitation: vectorised counts and the top-N table against a plain Python counter,
scores against a Python scorer, protocol S on ML-100K against PROTOCOLS.md."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from tfrec._keras import tf
from tfrec.data.dataset import Dataset
from tfrec.layers.covisitation import count_pairs, top_neighbours
from tfrec.models import make_model
from tfrec.models.covisit import CoVisitation
from tfrec.training import fit


# ------------------------------------------------------------- references
def reference_counts(sessions, window, directed=False, position_decay=1.0, max_time_gap=None, time_half_life=None):
    """Plain Python: sessions = lists of (item, timestamp); item None = unknown."""
    counts = defaultdict(float)
    for events in sessions:
        for p in range(len(events)):
            for q in range(p + 1, min(len(events), p + window)):
                (a, ta), (b, tb) = events[p], events[q]
                if a is None or b is None or a == b:
                    continue
                if max_time_gap is not None and abs(tb - ta) > max_time_gap:
                    continue
                weight = position_decay ** (q - p - 1)
                if time_half_life is not None:
                    weight *= 0.5 ** (abs(tb - ta) / time_half_life)
                counts[a, b] += weight
                if not directed:
                    counts[b, a] += weight
    return dict(counts)


def reference_top(counts, top_n, key=int):
    """{item: [(neighbour, weight)] heaviest first, ties by lower id}."""
    rows = defaultdict(list)
    for (a, b), w in counts.items():
        rows[a].append((b, w))
    return {a: sorted(nb, key=lambda x: (-x[1], key(x[0])))[:top_n] for a, nb in rows.items()}


def demo_sessions(demo):
    frame = demo.sessions.sort_values(["session_id", "position"], kind="stable")
    return [list(zip(g["item_id"], g["timestamp"])) for _, g in frame.groupby("session_id", sort=True)]


def user_sessions(interactions, session_gap=None):
    """Each user's interactions in (time, item id) order, cut where the gap exceeds session_gap."""
    frame = interactions.assign(key=interactions["item_id"].astype(int)).sort_values(["user_id", "timestamp", "key"])
    sessions = []
    for _, group in frame.groupby("user_id", sort=False):
        current, last = [], None
        for item, t in zip(group["item_id"], group["timestamp"]):
            if current and session_gap is not None and t - last > session_gap:
                sessions.append(current)
                current = []
            current.append((item, int(t)))
            last = t
        sessions.append(current)
    return sessions


def vectorised_counts(sessions, **params):
    names = sorted({i for s in sessions for i, _ in s if i is not None}, key=str)
    code = {n: k + 1 for k, n in enumerate(names)}
    items = np.array([code.get(i, 0) if i is not None else 0 for s in sessions for i, _ in s], np.int64)
    session = np.repeat(np.arange(len(sessions)), [len(s) for s in sessions])
    stamps = np.array([t for s in sessions for _, t in s], np.int64)
    row, col, weight = count_pairs(items, session, stamps, **params)
    back = np.array([None] + names, dtype=object)
    return {(back[r], back[c]): w for r, c, w in zip(row, col, weight)}, (row, col)


def assert_counts_equal(ours, theirs):
    assert set(ours) == set(theirs)
    keys = sorted(theirs)
    np.testing.assert_allclose([ours[k] for k in keys], [theirs[k] for k in keys], rtol=1e-12)


PARAMS = [
    {"window": 5},
    {"window": 2},
    {"window": 5, "directed": True},
    {"window": 4, "position_decay": 0.5},
    {"window": 6, "max_time_gap": 2},
    {"window": 3, "time_half_life": 3.0, "position_decay": 0.7, "directed": True},
]


@pytest.fixture(scope="module")
def ml_slice(ml100k):
    users = sorted(ml100k.interactions["user_id"].unique(), key=int)[:60]
    frame = ml100k.interactions[ml100k.interactions["user_id"].isin(users)].reset_index(drop=True)
    return Dataset(interactions=frame, items=ml100k.items, name="ml-100k-slice")


# ---------------------------------------------------------------- counting
@pytest.mark.parametrize("params", PARAMS)
def test_counts_equal_python_counter_on_demo_sessions(demo, params):
    sessions = demo_sessions(demo)
    ours, (row, col) = vectorised_counts(sessions, **params)
    assert_counts_equal(ours, reference_counts(sessions, **params))
    key = row * 1000 + col
    assert np.all(np.diff(key) > 0), "pairs must come sorted by (row, col), without duplicates"


@pytest.mark.parametrize(
    "params", [{"window": 5}, {"window": 3, "directed": True}, {"window": 5, "max_time_gap": 3600}, {"window": 4, "time_half_life": 86400.0}]
)
def test_counts_equal_python_counter_on_ml100k_slice(ml_slice, params):
    for gap in (None, 1800):
        sessions = user_sessions(ml_slice.interactions, gap)
        ours, _ = vectorised_counts(sessions, **params)
        assert_counts_equal(ours, reference_counts(sessions, **params))


def test_unknown_items_keep_their_position_but_form_no_pair():
    sessions = [[("a", 0), (None, 1), ("b", 2)], [("b", 0), ("c", 1), ("b", 2)]]
    ours, _ = vectorised_counts(sessions, window=3)
    assert ours == {("a", "b"): 1.0, ("b", "a"): 1.0, ("b", "c"): 2.0, ("c", "b"): 2.0}
    assert ours == reference_counts(sessions, window=3)


def test_top_neighbours_ties_by_lower_index():
    row = np.array([1, 1, 1, 1, 2, 3])
    col = np.array([2, 3, 4, 5, 1, 1])
    weight = np.array([1.0, 2.0, 2.0, 0.5, 3.0, 3.0])
    neighbours, weights, degree = top_neighbours(row, col, weight, n_rows=6, top_n=2)
    assert neighbours[1].tolist() == [3, 4] and weights[1].tolist() == [2.0, 2.0]
    assert neighbours[2].tolist() == [1, 0] and weights[2].tolist() == [3.0, 0.0]
    assert not neighbours[0].any() and degree.tolist() == [0, 4, 1, 1, 0, 0]


# ------------------------------------------------------------------ model
def _table(model) -> dict:
    ids = model.items.ids.numpy().astype(str)
    out = {}
    for item, (nb, w) in enumerate(zip(model.table.neighbours.numpy(), model.table.weights_table.numpy())):
        kept = [(ids[n], float(x)) for n, x in zip(nb, w) if n > 0]
        if kept:
            out[ids[item]] = kept
    return out


@pytest.mark.parametrize("params", [{"neighbours": 4}, {"neighbours": 3, "directed": True, "position_decay": 0.5}])
def test_table_on_demo_equals_python_top_n(demo, params):
    model = fit(CoVisitation(**params), demo, verbose=0).model
    counts = reference_counts(demo_sessions(demo), window=5, directed=params.get("directed", False), position_decay=params.get("position_decay", 1.0))
    known = set(demo.interactions["item_id"])
    counts = {k: w for k, w in counts.items() if k[0] in known and k[1] in known}
    assert _table(model) == reference_top(counts, params["neighbours"])
    assert model.table.neighbours.numpy().shape == (model.items.size, params["neighbours"])


def test_table_on_ml100k_slice_with_session_gap_equals_python_top_n(ml_slice):
    model = fit(CoVisitation(neighbours=7, session_gap=3600, window=4), ml_slice, verbose=0).model
    counts = reference_counts(user_sessions(ml_slice.interactions, 3600), window=4)
    assert _table(model) == reference_top(counts, 7)
    assert int(model.pair_count.numpy()) == len(counts)


def _python_scores(model, items, history_length, history_decay, tiebreak):
    """Scores from the stored table, in plain Python (items: time order)."""
    ids = model.items.ids.numpy().astype(str)
    index = {item: k for k, item in enumerate(ids)}
    table = _table(model)
    scores = np.zeros(len(ids))
    for age, item in enumerate(reversed(items[-history_length:])):
        for neighbour, w in table.get(item, []):
            scores[index[neighbour]] += history_decay**age * w
    counts = model.fallback.counts.numpy()
    return scores + tiebreak * counts / (counts.max() + 1)


def test_known_and_unknown_user_scores_equal_python_scorer(demo):
    params = {"history_length": 4, "history_decay": 0.5, "popularity_tiebreak": 0.01}
    model = fit(CoVisitation(**params), demo, verbose=0).model
    frame = demo.interactions.sort_values(["user_id", "timestamp"], kind="stable")
    for user in ["0", "11"]:
        items = frame.loc[frame["user_id"] == user, "item_id"].tolist()
        got = model.score_candidates(model.users.lookup(tf.constant([user])), tf.zeros([1, 0], tf.int64)).numpy()[0]
        np.testing.assert_allclose(got[1:], _python_scores(model, items, 4, 0.5, 0.01)[1:], rtol=1e-6)
        extra = ["5", "9"]  # a known user's history input counts as the most recent items
        got = model.score_candidates(model.users.lookup(tf.constant([user])), model.items.lookup(tf.constant([extra]))).numpy()[0]
        np.testing.assert_allclose(got[1:], _python_scores(model, items + extra, 4, 0.5, 0.01)[1:], rtol=1e-6)
    from tfrec.serving import ServedModel

    served = ServedModel.from_model(model)
    history = ["3", "10", "12", "40", "41"]
    ids, scores = served.recommend(["stranger"], history=[history], k=5)
    expected = _python_scores(model, history, 4, 0.5, 0.01)
    index = {item: k for k, item in enumerate(model.items.ids.numpy().astype(str))}
    np.testing.assert_allclose(scores[0], [expected[index[i]] for i in ids[0]], rtol=1e-6)
    assert not set(ids[0]) & set(history)


def test_similar_items_are_the_stored_neighbours(demo):
    from tfrec.serving import ServedModel

    model = fit(CoVisitation(neighbours=5), demo, verbose=0).model
    table = _table(model)
    served = ServedModel.from_model(model)
    items = list(served.catalog["item_id"])
    ids, scores = served.similar_items(items, k=8)
    for item, row, row_scores in zip(items, ids, scores):
        expected = table.get(item, [])
        assert item not in row
        assert [(i, float(s)) for i, s in zip(row, row_scores) if i] == expected
        assert np.isneginf(row_scores[len(expected):]).all()


def test_directed_counts_only_what_came_next(demo):
    model = fit(CoVisitation(directed=True, neighbours=60), demo, verbose=0).model
    counts = reference_counts(demo_sessions(demo), window=5, directed=True)
    for item, neighbours in _table(model).items():
        for neighbour, weight in neighbours:
            assert counts[item, neighbour] == weight


def test_bad_parameters_are_clear_errors(demo):
    for params, word in [
        ({"window": 1}, "window"),
        ({"source": "clicks"}, "source"),
        ({"position_decay": 0}, "position_decay"),
        ({"history_decay": 1.5}, "history_decay"),
        ({"neighbours": 0}, "neighbours"),
        ({"history_length": 0}, "history_length"),
        ({"session_gap": -1}, "session_gap"),
        ({"directed": "yes"}, "directed"),
        ({"popularity_tiebreak": -1}, "popularity_tiebreak"),
    ]:
        with pytest.raises(ValueError, match=f"covisit: {word} must be"):
            make_model("covisit", **params)
        with pytest.raises(ValueError, match=f"covisit: {word} must be"):
            fit(CoVisitation(**params), demo, verbose=0)  # the constructor only stores: fit checks first
    no_sessions = Dataset(interactions=demo.interactions, items=demo.items, name="demo-no-sessions")
    with pytest.raises(ValueError, match="no sessions"):
        fit(CoVisitation(source="sessions"), no_sessions, verbose=0)


def test_summaries_name_what_was_computed(demo, tmp_path):
    from tensorboard.backend.event_processing import event_accumulator

    run = fit(CoVisitation(), demo, verbose=0, logdir=tmp_path).run_dir
    events = event_accumulator.EventAccumulator(str(run), size_guidance={event_accumulator.TENSORS: 0})
    events.Reload()
    assert {"covisit/distinct_pairs", "covisit/neighbours_per_item", "covisit/kept_weights", "covisit/neighbours_example"} <= set(events.Tags()["tensors"])


# ------------------------------------------------------------ protocol S
def _protocol_s_reference(split):
    """PROTOCOLS.md's reference: window 5, symmetric, sum over the last 3 items, ties by
    popularity then lower id; HR@10 and MRR@10 in plain numpy (a dense matrix is fine here)."""
    train = split.train.interactions
    ids = sorted(train["item_id"].unique(), key=int)
    index = {item: k for k, item in enumerate(ids)}
    counts = np.zeros((len(ids), len(ids)))
    for (a, b), w in reference_counts(user_sessions(train), window=5).items():
        counts[index[a], index[b]] = w
    popularity = train["item_id"].map(index).value_counts().reindex(range(len(ids)), fill_value=0).to_numpy()
    order = train.assign(key=train["item_id"].astype(int)).sort_values(["user_id", "timestamp", "key"])
    history = order.groupby("user_id", sort=False)["item_id"].apply(list)
    hits, reciprocal = [], []
    for user, target in zip(split.test["user_id"], split.test["item_id"]):
        items = [index[i] for i in history[user]]
        score = counts[items[-3:]].sum(axis=0)
        rank_key = np.lexsort((np.arange(len(ids)), -popularity, -score))
        seen = set(items)
        ranked = [k for k in rank_key if k not in seen][:10]
        position = ranked.index(index[target]) + 1 if target in index and index[target] in ranked else 0
        hits.append(position > 0)
        reciprocal.append(1.0 / position if position else 0.0)
    return float(np.mean(hits)), float(np.mean(reciprocal))


def test_protocol_s_on_ml100k(ml100k):
    from tfrec.data import make_split
    from tfrec.evaluation import evaluate
    from tfrec.serving import ServedModel

    split = make_split(ml100k, "leave-last")
    defaults = evaluate(ServedModel.from_model(fit(CoVisitation(), split.train, verbose=0).model), split)
    assert defaults["hr@10"] >= 0.1379  # PROTOCOLS.md co-visitation reference row
    assert defaults["hr@10"] == pytest.approx(0.1548, abs=1e-4) and defaults["mrr@10"] == pytest.approx(0.0576, abs=1e-4)
    reference = CoVisitation(history_length=3, history_decay=1.0, neighbours=2000)
    ours = evaluate(ServedModel.from_model(fit(reference, split.train, verbose=0).model), split)
    hr, mrr = _protocol_s_reference(split)
    assert (ours["hr@10"], ours["mrr@10"]) == pytest.approx((hr, mrr), abs=1e-9)
    assert hr == pytest.approx(0.1379, abs=5e-5) and mrr == pytest.approx(0.0519, abs=5e-5)
