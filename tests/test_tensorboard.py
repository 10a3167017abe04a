"""TensorBoard that compares models: HParams experiment, run names, text tables, projector, weight names.

Everything is read back from the event files (the hparams plugin's protos) and the
projector files, as TensorBoard would read them.
"""
from __future__ import annotations

import re

import pytest
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import api_pb2, metadata

from tfrec.cli import main
from tfrec.models import make_model
from tfrec.models.tensorboard import hparam_info, path_label, read_experiment, write_experiment
from tfrec.training import fit


@pytest.fixture(scope="module")
def logdir(tmp_path_factory, demo_split):
    """One log folder: ``mf`` fitted with ``tfrec.fit`` (split given, some parameters
    changed), then ``tfrec train popularity`` with its defaults."""
    root = tmp_path_factory.mktemp("tb")
    mf = make_model("mf", epochs=2, factors=8, l2=0.5, feedback="implicit", refit=False)
    fit(mf, demo_split.train, logdir=root / "runs", split=demo_split.name, verbose=0)
    assert main(["train", "popularity", "--data", "demo", "--logdir", str(root / "runs"), "--export-dir", str(root / "sm"), "-q"]) == 0
    return root / "runs"


def _run(logdir, model: str):
    (run,) = [p for p in logdir.iterdir() if p.is_dir() and p.name.startswith(f"{model}-")]
    return run


def _events(folder):
    events = event_accumulator.EventAccumulator(str(folder), size_guidance={event_accumulator.TENSORS: 0})
    events.Reload()
    return events


@pytest.mark.slow  # fits
def test_run_names_carry_model_data_and_split(logdir):
    for model in ("mf", "popularity"):
        assert re.fullmatch(rf"{model}-demo-temporal-\d{{8}}-\d{{6}}", _run(logdir, model).name)


@pytest.mark.parametrize(
    "name, label",
    [("ml-100k", "ml-100k"), ("demo", "demo"), ("synthetic-1000000", "synthetic-1M"), ("synthetic-20000", "synthetic-20k"),
     ("synthetic-1234", "synthetic-1234"), ("my ratings (2024)", "my-ratings-2024")],
)
def test_data_names_are_made_safe_for_run_names(name, label):
    assert path_label(name) == label


@pytest.mark.slow  # fits
def test_experiment_puts_model_data_split_first_with_types(logdir):
    experiment = read_experiment(logdir)
    infos = {info.name: info for info in experiment.hparam_infos}
    # TensorBoard orders the columns by `differs`, then name, and shows the first five
    shown_first = sorted(experiment.hparam_infos, key=lambda info: (not info.differs, info.name))[:3]
    assert {info.name for info in shown_first} == {"model", "data", "split"}
    assert [info.name for info in experiment.hparam_infos if info.differs] == ["model", "data", "split"]
    assert list(infos["model"].domain_discrete) == ["mf", "popularity"] and list(infos["split"].domain_discrete) == ["temporal"]
    # columns for the parameters set away from their defaults (the five shown first are
    # model, data, split and what was tuned), typed: numbers as numbers, never strings
    assert set(infos) == {"model", "data", "split", "epochs", "factors", "l2", "feedback", "refit"}
    for name in ("model", "data", "split", "feedback"):
        assert infos[name].type == api_pb2.DATA_TYPE_STRING, name
    for name in ("epochs", "factors", "l2"):  # l2 and epochs may be None: still numbers
        assert infos[name].type == api_pb2.DATA_TYPE_FLOAT64, name
    assert infos["refit"].type == api_pb2.DATA_TYPE_BOOL and list(infos["feedback"].domain_discrete) == ["explicit", "implicit"]
    assert infos["factors"].description  # the parameter's doc
    assert len(list(logdir.glob("events.out.tfevents.*.experiment"))) == 1  # rewritten, not appended


@pytest.mark.slow  # fits
def test_headline_metrics_are_the_first_metric_columns(logdir):
    tags = [metric.name.tag for metric in read_experiment(logdir).metric_infos]
    assert tags[:3] == ["eval_temporal/ndcg@10", "eval_temporal/recall@10", "fit/fit_seconds"]


@pytest.mark.slow  # fits
def test_run_hparams_are_typed_and_the_trial_id_is_the_run_name(logdir):
    run = _run(logdir, "mf")
    (event,) = _events(run).Tensors(metadata.SESSION_START_INFO_TAG)
    content = _events(run).SummaryMetadata(metadata.SESSION_START_INFO_TAG).plugin_data.content
    info = metadata.parse_session_start_info_plugin_data(content)
    assert event.step == 0 and info.group_name == run.name
    assert info.hparams["model"].string_value == "mf" and info.hparams["split"].string_value == "temporal"
    assert info.hparams["data"].string_value == "demo"
    assert info.hparams["factors"].number_value == 8 and info.hparams["seed"].number_value == 0  # every parameter is logged
    assert info.hparams["refit"].bool_value is False
    assert "batch_size" not in info.hparams  # None (the feedback's default): no cell, never the string "None"
    assert all(value.WhichOneof("kind") != "string_value" or name in ("model", "data", "split", "feedback", "solver")
               for name, value in info.hparams.items())


@pytest.mark.slow  # fits
def test_evaluation_is_a_text_table_and_metric_scalars(logdir):
    events = _events(_run(logdir, "popularity"))
    tags = set(events.Tags()["tensors"])
    assert {"eval_temporal/ndcg@10", "eval_temporal/recall@10", "fit/fit_seconds", "eval_temporal/metrics", "fit/summary"} <= tags
    assert "fit/users" not in tags  # one-shot figures are in the text table, not dots at step 0
    (table,) = events.Tensors("eval_temporal/metrics")
    lines = table.tensor_proto.string_val[0].decode().splitlines()
    assert lines[0] == "| metric | value |" and lines[2].startswith("| ndcg@10 |") and lines[3].startswith("| recall@10 |")
    (fit_table,) = events.Tensors("fit/summary")
    assert "| split | temporal |" in fit_table.tensor_proto.string_val[0].decode()


@pytest.mark.slow  # fits
def test_projector_default_run_has_titles_and_categories(logdir, demo):
    run = _run(logdir, "mf")
    # TensorBoard's projector also lists the `train` sub-run (it finds the checkpoint in the
    # parent folder) and selects it first: it needs the metadata too
    for folder in (run, run / "train"):
        assert 'metadata_path: "metadata.tsv"' in (folder / "projector_config.pbtxt").read_text()
        lines = (folder / "metadata.tsv").read_text(encoding="utf-8").splitlines()
        assert lines[0] == "title\tcategory" and len(lines) == 1 + demo.items["item_id"].nunique()
        title, category = lines[1].split("\t")
        row = demo.items.set_index("title").loc[title]
        assert category == str(row["category"])
    assert list(run.glob("embeddings.ckpt-*.index"))


@pytest.mark.slow  # fits
def test_tower_histograms_are_named_after_their_tower(demo_split, tmp_path):
    run = fit(make_model("two_tower", epochs=1), demo_split.train, logdir=tmp_path, verbose=0).run_dir
    tags = {tag for tag in _events(run / "train").Tags()["tensors"] if tag.endswith("/histogram")}
    assert {"query_tower/user_embedding_0/histogram", "query_tower/dense_0/kernel_0/histogram",
            "candidate_tower/dense_0/kernel_0/histogram", "candidate_tower/category_embedding_0/histogram"} <= tags
    assert not [tag for tag in tags if not tag.startswith(("query_tower/", "candidate_tower/"))]
    assert (run / "train" / "metadata.tsv").is_file()


def test_experiment_keeps_earlier_columns_and_leads_with_the_newest_metrics(tmp_path):
    write_experiment(tmp_path, [hparam_info("model", str, ["mf"], differs=True)], ["eval_temporal/ndcg@10", "fit/fit_seconds"])
    write_experiment(tmp_path, [hparam_info("model", str, ["item_knn"], differs=True), hparam_info("neighbours", int)], ["eval_u1/rmse"])
    experiment = read_experiment(tmp_path)
    assert [m.name.tag for m in experiment.metric_infos] == ["eval_u1/rmse", "eval_temporal/ndcg@10", "fit/fit_seconds"]
    infos = {info.name: info for info in experiment.hparam_infos}
    assert list(infos["model"].domain_discrete) == ["item_knn", "mf"] and infos["neighbours"].type == api_pb2.DATA_TYPE_FLOAT64


def test_bench_hparams_use_the_same_columns_and_tags(tmp_path):
    from tfrec.bench.report import tensorboard_hparams

    rows = [
        {"status": "ok", "model": "popularity", "kind": "tfrec", "protocol": "T", "ndcg@10": 0.1, "recall@10": 0.2, "fit_s": 1.0},
        {"status": "ok", "model": "item_knn", "kind": "tfrec", "protocol": "R", "rmse": 0.9, "mae": 0.7, "split_note": "official folds u1..u5 (mean)"},
    ]
    root = tensorboard_hparams({"data": "ml-100k", "rows": rows}, tmp_path / "hparams")
    experiment = read_experiment(tmp_path / "hparams")
    assert {info.name for info in experiment.hparam_infos if info.differs} == {"model", "data", "split", "kind", "protocol"}
    tags = [m.name.tag for m in experiment.metric_infos]
    assert tags[:4] == ["eval_temporal/ndcg@10", "eval_temporal/recall@10", "eval_u1-u5/rmse", "eval_u1-u5/mae"] and "fit/fit_seconds" in tags
    events = _events(root / "T-tfrec-popularity")
    assert {"eval_temporal/ndcg@10", "fit/fit_seconds"} <= set(events.Tags()["tensors"])
