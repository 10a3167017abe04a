"""What a SavedModel was trained on, and results that say when they are a fallback (issue 14)."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from tfrec.cli import main
from tfrec.data import make_split
from tfrec.data.dataset import interactions_fingerprint
from tfrec.export import export_model
from tfrec.export.provenance import TRAINING_ASSET, TrainingRecord, mismatch
from tfrec.models import MODELS, make_model
from tfrec.serving import ServedModel
from tfrec.training import fit

NAMES = sorted(MODELS)


@pytest.fixture(scope="module")
def two_versions(fitted, demo, tmp_path_factory):
    """popularity/1 fitted on demo temporal, popularity/2 on demo leave-last (newest)."""
    root = tmp_path_factory.mktemp("provenance")
    first = export_model(fitted.model("popularity"), root, split=fitted.split)
    leave_last = make_split(demo, "leave-last")
    second = export_model(fit(make_model("popularity"), leave_last.train, verbose=0).model, root, split=leave_last)
    return root / "popularity", first, second


def _warnings(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("tfrec: warning:")]


def test_fingerprint_ignores_row_order_and_sees_every_change(demo):
    frame = demo.interactions
    fingerprint = interactions_fingerprint(frame)
    assert fingerprint.startswith("sha256:") and fingerprint == interactions_fingerprint(frame.sample(frac=1.0, random_state=1))
    changed = frame.copy()
    changed.loc[0, "rating"] += 0.5
    assert interactions_fingerprint(changed) != fingerprint
    assert interactions_fingerprint(frame.iloc[1:]) != fingerprint
    renamed = frame.copy()
    renamed.loc[0, "user_id"] = renamed.loc[0, "user_id"] + "x"
    assert interactions_fingerprint(renamed) != fingerprint


def test_mismatch_names_other_data_another_split_and_changed_data():
    record = TrainingRecord(data="demo", fingerprint="sha256:a", split="temporal", protocol="T", n_users=3, n_items=4, n_interactions=5,
                            trained_at="2026-01-01T00:00:00Z", tfrec_version="0")
    assert mismatch(record, "demo", "temporal", "sha256:a") is None
    assert mismatch(record, "ml-100k", "temporal", "sha256:b") == "evaluated on ml-100k but trained on demo"
    assert "trained on split temporal" in mismatch(record, "demo", "leave-last", "sha256:b")
    assert "the data changed" in mismatch(record, "demo", "temporal", "sha256:b")
    assert mismatch(None, "demo", "temporal", "sha256:b") is None
    assert TrainingRecord.from_dict({**record.to_dict(), "added_later": 1}) == record


def test_record_round_trips_through_export_and_load(fitted, two_versions):
    _, first, _ = two_versions
    served = ServedModel.load(first)
    record = served.trained_on
    train = fitted.split.train
    assert isinstance(record, TrainingRecord)
    assert (record.data, record.split, record.protocol) == ("demo", "temporal", "T")
    assert record.fingerprint == interactions_fingerprint(train.interactions)
    assert (record.n_users, record.n_items, record.n_interactions) == (train.n_users, train.n_items, len(train.interactions))
    assert record.trained_at.endswith("Z") and record.tfrec_version
    assert "trained on demo, split temporal (protocol T)" in served.describe() and "version 1" in served.describe()


def test_export_without_split_records_what_the_model_knows(fitted, tmp_path):
    record = ServedModel.load(export_model(fitted.model("popularity"), tmp_path)).trained_on
    assert record.data == "demo" and record.fingerprint is None and record.split is None
    assert record.n_interactions == len(fitted.split.train.interactions)


def test_old_export_without_record_loads_with_none(two_versions, tmp_path):
    _, first, _ = two_versions
    old = shutil.copytree(first, tmp_path / "1")
    (old / "assets" / TRAINING_ASSET).unlink()
    served = ServedModel.load(old)
    assert served.trained_on is None and "not recorded" in served.describe()


def test_evaluate_on_other_data_warns(two_versions, demo, tmp_path, capsys):
    _, first, _ = two_versions
    other = tmp_path / "other.csv"
    demo.interactions.to_csv(other, index=False)
    assert main(["evaluate", str(first), "--data", str(other)]) == 0
    captured = capsys.readouterr()
    assert "popularity version 1" in captured.out and "trained on demo" in captured.out
    (warning,) = _warnings(captured.err)
    assert "evaluated on other but trained on demo" in warning and "version 1" in warning


def test_evaluate_on_another_split_warns_and_names_the_matching_version(two_versions, capsys):
    folder, first, _ = two_versions
    assert main(["evaluate", str(folder), "--split", "temporal"]) == 0  # serves version 2, fitted on leave-last
    (warning,) = _warnings(capsys.readouterr().err)
    assert "popularity version 2" in warning and "trained on split leave-last" in warning
    assert f"tfrec evaluate {first}" in warning
    assert main(["evaluate", str(first), "--split", "temporal"]) == 0
    assert _warnings(capsys.readouterr().err) == []


def test_evaluate_ml100k_with_a_demo_model_warns(two_versions, ml100k_dir, capsys):
    folder, _, _ = two_versions
    assert main(["evaluate", str(folder), "--data", str(ml100k_dir), "--split", "temporal"]) == 0
    (warning,) = _warnings(capsys.readouterr().err)
    assert "evaluated on ml-100k but trained on demo" in warning and "tfrec train popularity" in warning


def test_recommend_says_when_the_user_is_unknown(two_versions, capsys):
    _, first, _ = two_versions
    assert main(["recommend", str(first), "--user", "42", "-k", "3"]) == 0
    captured = capsys.readouterr()
    (warning,) = _warnings(captured.err)
    assert "user 42 is not in the training data (demo): showing the model's fallback: the most popular items" in warning
    assert "trained on demo" in captured.out and "excluded 0 already-seen items" in captured.out


def test_recommend_shows_history_titles_unknown_items_and_exclusions(fitted, two_versions, capsys):
    _, first, _ = two_versions
    train = fitted.split.train.interactions
    user = train["user_id"].iloc[0]
    seen = set(train.loc[train["user_id"] == user, "item_id"])
    new_item = next(item for item in fitted.split.train.items["item_id"] if item in set(train["item_id"]) and item not in seen)
    assert main(["recommend", str(first), "--user", user, "--history", f"{new_item},9999,12345", "-k", "3"]) == 0
    captured = capsys.readouterr()
    (warning,) = _warnings(captured.err)
    assert warning == "tfrec: warning: 2 of 3 history items are unknown to the model and were ignored: 9999, 12345"
    title = fitted.split.train.items.set_index("item_id").loc[new_item, "title"]
    assert f"{new_item} {title!r}" in captured.out and "9999 (unknown)" in captured.out
    assert f"excluded {len(seen) + 1} already-seen items" in captured.out


@pytest.mark.parametrize("name", ["popularity", "item_knn"])
def test_served_model_flags_fallback_rows(fitted, name):
    memory, loaded, _ = fitted.exported(name)
    train = fitted.split.train.interactions
    known = train["user_id"].iloc[0]
    item = train["item_id"].iloc[0]
    users = [known, "no-such-user", "no-such-user", "no-such-user"]
    history = [[], [], [item, "no-such-item"], ["no-such-item"]]
    for served in (memory, loaded):
        ids, scores, fallback = served.recommend(users, history=history, k=3, with_flags=True)
        assert ids.shape == (4, 3) and scores.shape == (4, 3)
        history_model = served.uses_history
        np.testing.assert_array_equal(fallback, [False, True, not history_model, True])
        explained = served.explain(users, history)
        np.testing.assert_array_equal(explained.known_user, [True, False, False, False])
        assert explained.unknown_history == [[], [], ["no-such-item"], ["no-such-item"]]
        assert list(explained.excluded) == [train.loc[train["user_id"] == known, "item_id"].nunique(), 0, 1, 0]


@pytest.mark.parametrize("name", NAMES)
def test_fallback_scores_are_documented_shares(fitted, name):
    """Every model's unknown-user fallback: popularity's raw counts for popularity itself,
    each item's share of the training interactions (in [0, 1], summing to 1) for the others,
    in the same order as popularity's."""
    memory = ServedModel.from_model(fitted.model(name))  # no export: the serving functions are the same
    ids, scores, fallback = memory.recommend(["no-such-user"], k=memory.n_items, with_flags=True)
    assert fallback[0]
    counts = fitted.split.train.interactions["item_id"].value_counts()
    if name == "popularity":
        np.testing.assert_array_equal(scores[0], counts[list(ids[0])].to_numpy(np.float32))
        return
    np.testing.assert_allclose(scores[0], (counts[list(ids[0])] / counts.sum()).to_numpy(np.float32), rtol=1e-6)
    assert np.all((scores[0] >= 0) & (scores[0] <= 1)) and scores[0].sum() == pytest.approx(1.0, abs=1e-5)
    popularity_ids, _ = ServedModel.from_model(fitted.model("popularity")).recommend(["no-such-user"], k=memory.n_items)
    np.testing.assert_array_equal(ids, popularity_ids)
