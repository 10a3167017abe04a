"""TensorBoard logging shared by every model: one run folder per fit, one HParams experiment per log folder.

A log folder (``tfrec train --logdir runs``, ``tfrec.fit(..., logdir="runs")``) holds:

- one run per fit, ``<model>-<data>-<split>-<YYYYmmdd-HHMMSS>`` (``new_run_dir``): its
  hyperparameters (``write_hparams``; the HParams table's trial id is the run's name),
  what the model computed, training curves, the projector, the serving graph, and with
  ``tfrec train`` the evaluation (``write_evaluation``: scalars the HParams table reads,
  and a text table of the run's metrics);
- the folder's HParams experiment (``write_experiment``, an event file named
  ``*.experiment`` in the folder itself), rewritten by every run: ``model``, ``data`` and
  ``split`` first (marked as differing, the HParams table shows them first), then the
  parameters some run set away from their defaults, with their types (numbers as
  numbers; every run logs all its parameters, but one left at None is not logged);
  metric columns: the headline metrics of the run's split (``HEADLINE_METRICS``), then
  those of the splits of earlier runs, then the fit time.
"""
from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tensorboard.compat.proto import event_pb2
from tensorboard.plugins import projector
from tensorboard.plugins.hparams import api as hparams_api
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

from tfrec._keras import keras, tf
from tfrec.data.split_names import SPLIT_PROTOCOLS
from tfrec.models.params import Param

#: The headline metrics of each protocol (``tfrec.data.Split.protocol``): the default metric columns.
HEADLINE_METRICS: dict[str, tuple[str, ...]] = {"T": ("ndcg@10", "recall@10"), "R": ("rmse", "mae"), "S": ("hr@10", "mrr@10")}
#: The fit time, a metric column after the headline metrics.
FIT_SECONDS_TAG = "fit/fit_seconds"
#: The file name suffix of a log folder's HParams experiment.
EXPERIMENT_SUFFIX = ".experiment"


def eval_tag(split: str, metric: str) -> str:
    """The scalar tag of an evaluation metric: ``eval_<split>/<metric>``, e.g. ``eval_temporal/ndcg@10``."""
    return f"eval_{split}/{metric}"


def headline_tags(split: str, protocol: str | None = None) -> list[str]:
    """The tags of the headline metrics of ``split`` (``protocol`` defaults to the split's)."""
    return [eval_tag(split, metric) for metric in HEADLINE_METRICS.get(protocol or SPLIT_PROTOCOLS.get(split) or "", ())]


def path_label(name: str) -> str:
    """``name`` as a part of a run name: characters other than letters, digits, ``.``,
    ``_`` and ``-`` become ``-``; ``synthetic-<n>`` is counted in k / M (``synthetic-1M``).
    ``ml-100k``, ``demo`` and a CSV's stem stay as they are."""
    match = re.fullmatch(r"synthetic-(\d+)", name)
    if match:
        n = int(match.group(1))
        name = "synthetic-" + next((f"{n // size}{unit}" for unit, size in (("M", 10**6), ("k", 10**3)) if n >= size and n % size == 0), str(n))
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "data"


def new_run_dir(logdir: str | Path, model_name: str, data_name: str | None = None, split: str | None = None) -> Path:
    """``<logdir>/<model>-<data>-<split>-<YYYYmmdd-HHMMSS>[-n]`` (data and split when given,
    as ``path_label``), a folder that did not exist before."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    parts = [model_name, *(path_label(part) for part in (data_name, split) if part), stamp]
    base = Path(logdir) / "-".join(parts)
    run_dir, n = base, 1
    while run_dir.exists():
        n += 1
        run_dir = base.with_name(f"{base.name}-{n}")
    run_dir.mkdir(parents=True)
    return run_dir


# ------------------------------------------------------------------ HParams
def hparam_info(name: str, kind: type, values: Iterable[Any] = (), differs: bool = False, description: str = "") -> api_pb2.HParamInfo:
    """The HParams column ``name``: ``kind`` int / float (a number), bool or str (with the
    discrete ``values``, e.g. a parameter's choices); ``differs`` puts it first (TensorBoard
    orders the columns by ``differs``, then by name, and shows the first five)."""
    info = api_pb2.HParamInfo(name=name, differs=differs, description=description)
    if kind in (int, float):
        info.type = api_pb2.DATA_TYPE_FLOAT64
    elif kind is bool:
        info.type = api_pb2.DATA_TYPE_BOOL
        info.domain_discrete.extend([False, True])
    else:
        info.type = api_pb2.DATA_TYPE_STRING
        info.domain_discrete.extend(sorted({str(v) for v in values if v is not None}))
    return info


def param_infos(config: Mapping[str, Any], params: Mapping[str, Param] | None = None) -> list[api_pb2.HParamInfo]:
    """The columns of a model's parameters: typed by their ``Param`` rule (else by the value's type)."""
    infos = []
    for name, value in config.items():
        spec = (params or {}).get(name)
        if spec is not None:
            infos.append(hparam_info(name, spec.kind, spec.choices or [value], description=spec.doc))
        elif isinstance(value, (bool, int, float, str)):
            infos.append(hparam_info(name, type(value), [value]))
    return infos


def hparam_values(config: Mapping[str, Any]) -> dict[str, bool | float | str]:
    """A run's hparam values: bools, numbers and strings as they are, None left out (an
    empty cell: the parameter's documented default applies), anything else as text."""
    values: dict[str, bool | float | str] = {}
    for name, value in config.items():
        if value is None:
            continue
        if isinstance(value, np.generic):
            value = value.item()
        values[name] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return values


def read_experiment(logdir: str | Path) -> api_pb2.Experiment | None:
    """The HParams experiment ``write_experiment`` left in ``logdir`` (None when there is none)."""
    experiment = None
    for path in sorted(Path(logdir).glob(f"events.out.tfevents.*{EXPERIMENT_SUFFIX}")):
        for record in tf.data.TFRecordDataset(str(path)):
            for value in event_pb2.Event.FromString(record.numpy()).summary.value:
                if value.tag == metadata.EXPERIMENT_TAG:
                    experiment = metadata.parse_experiment_plugin_data(value.metadata.plugin_data.content)
    return experiment


def write_experiment(logdir: str | Path, hparams: list[api_pb2.HParamInfo], metric_tags: list[str]) -> None:
    """(Re)write the HParams experiment of ``logdir``: ``hparams`` and ``metric_tags`` first,
    then the columns of the experiment already there (discrete values merged), so that
    every run of the folder has its columns and the newest run's metrics lead."""
    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    old_files = list(logdir.glob(f"events.out.tfevents.*{EXPERIMENT_SUFFIX}"))
    previous = read_experiment(logdir)
    infos: dict[str, api_pb2.HParamInfo] = {}
    for info in [*hparams, *(previous.hparam_infos if previous else [])]:
        if info.name not in infos:
            infos[info.name] = api_pb2.HParamInfo()
            infos[info.name].CopyFrom(info)
        elif infos[info.name].type == info.type == api_pb2.DATA_TYPE_STRING:
            merged = infos[info.name]
            values = sorted(set(merged.domain_discrete) | set(info.domain_discrete))
            merged.ClearField("domain_discrete")
            merged.domain_discrete.extend(values)
    tags = list(dict.fromkeys([*metric_tags, *(m.name.tag for m in (previous.metric_infos if previous else []))]))
    experiment = api_pb2.Experiment(
        hparam_infos=list(infos.values()),
        metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(group="", tag=tag), display_name=tag) for tag in tags],
        time_created_secs=previous.time_created_secs if previous else time.time(),
    )
    summary = hparams_api.hparams_config_pb(hparams=[], metrics=[])
    content = plugin_data_pb2.HParamsPluginData.FromString(summary.value[0].metadata.plugin_data.content)
    content.experiment.CopyFrom(experiment)
    summary.value[0].metadata.plugin_data.content = content.SerializeToString()
    writer = tf.summary.create_file_writer(str(logdir), filename_suffix=EXPERIMENT_SUFFIX)
    with writer.as_default():
        tf.summary.experimental.write_raw_pb(summary.SerializeToString(), step=0)
    writer.close()
    for path in old_files:
        path.unlink(missing_ok=True)


def write_hparams(
    run_dir: Path,
    model_name: str,
    config: dict[str, Any],
    data_name: str,
    split: str | None = None,
    params: Mapping[str, Param] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> None:
    """The run's hyperparameters (``model``, ``data``, ``split`` when given, then every
    parameter of ``config``; trial id: the run's name) and its log folder's experiment
    (``write_experiment``): the headline metrics of ``split`` and a column for each
    parameter set away from its default (``defaults``: the constructor's; None: every
    parameter), typed by ``params`` (the model's ``PARAMS``).

    Only the changed parameters get columns because TensorBoard shows the first five
    columns by default: ``model``, ``data``, ``split`` and what was tuned, then the
    metrics (a parameter at its default in every run compares nothing).
    """
    lead = {"model": model_name, "data": data_name, **({"split": split} if split else {})}
    hparams = [hparam_info(name, str, [value], differs=True) for name, value in lead.items()]
    changed = {key: value for key, value in config.items() if defaults is None or key not in defaults or defaults[key] != value}
    write_experiment(run_dir.parent, hparams + param_infos(changed, params), [*(headline_tags(split) if split else []), FIT_SECONDS_TAG])
    with tf.summary.create_file_writer(str(run_dir)).as_default():
        hparams_api.hparams({**lead, **hparam_values(config)}, trial_id=run_dir.name)


def metrics_table(values: Mapping[str, Any], first: Iterable[str] = (), header: str = "metric") -> str:
    """A markdown table ``| <header> | value |`` of ``values`` (``first`` leads, then the rest
    in order; floats with 4 decimals)."""
    first = [key for key in first if key in values]
    order = first + [key for key in values if key not in first]
    rows = [f"| {key} | {values[key]:.4f} |" if isinstance(values[key], float) else f"| {key} | {values[key]} |" for key in order]
    return "\n".join([f"| {header} | value |", "|---|---|", *rows])


def write_evaluation(run_dir: Path | None, split: str, metrics: Mapping[str, float], protocol: str | None = None) -> None:
    """The evaluation of a run on ``split``: each metric as a scalar ``eval_<split>/<metric>``
    (the HParams table's metric columns read them) and the text ``eval_<split>/metrics``,
    a markdown table of them, headline metrics first. Nothing without a run folder (None)."""
    if run_dir is None:
        return
    values = {key: float(value) for key, value in metrics.items() if value is not None}
    write_scalars(run_dir, values, prefix=f"eval_{split}/")
    with tf.summary.create_file_writer(str(run_dir)).as_default():
        tf.summary.text(f"eval_{split}/metrics", metrics_table(values, HEADLINE_METRICS.get(protocol or SPLIT_PROTOCOLS.get(split) or "", ())),
                        step=0)


def write_fit(run_dir: Path, data_name: str, split: str | None, users: int, items: int, interactions: int, seconds: float) -> None:
    """What a fit saw and took: the scalar ``fit/fit_seconds`` (a metric column of the HParams
    table) and the text ``fit/summary``, a markdown table of data, split, sizes and seconds."""
    write_scalars(run_dir, {"fit_seconds": seconds}, prefix="fit/")
    table = metrics_table({"data": data_name, "split": split or "-", "users": f"{users:,}", "items": f"{items:,}",
                           "interactions": f"{interactions:,}", "fit seconds": f"{seconds:.2f}"}, header="fit")
    with tf.summary.create_file_writer(str(run_dir)).as_default():
        tf.summary.text("fit/summary", table, step=0)


def write_scalars(run_dir: Path, values: dict[str, float], step: int = 0, prefix: str = "") -> None:
    with tf.summary.create_file_writer(str(run_dir)).as_default():
        for key, value in values.items():
            if value is not None:
                tf.summary.scalar(f"{prefix}{key}", float(value), step=step)


def write_serving_graph(run_dir: Path, function) -> None:
    """The traced serving graph of ``function`` (a tf.function with an input signature)."""
    with tf.summary.create_file_writer(str(run_dir)).as_default():
        tf.summary.graph(function.get_concrete_function().graph)


def tensorboard_run_dir(callbacks: list) -> Path | None:
    """The run folder of the TensorBoard callback among ``callbacks`` (None without one)."""
    for callback in callbacks:
        if isinstance(callback, keras.callbacks.TensorBoard):
            return Path(callback.log_dir)
    return None


def _tsv_cell(text: Any, empty: str) -> str:
    return " ".join(str(text).split()) or empty


def write_projector(
    run_dir: str | Path,
    embeddings: np.ndarray,
    titles: list[str],
    categories: list[str] | None = None,
    tensor_name: str = "item_embeddings",
) -> None:
    """Item embeddings for TensorBoard's projector, labelled with their titles and categories.

    Writes into ``run_dir`` a checkpoint holding ``embeddings`` [n, d] as the variable
    ``tensor_name``, ``metadata.tsv`` (a header ``title<TAB>category``, then one row per
    embedding; a missing category reads "(none)", several are joined by "|") and
    ``projector_config.pbtxt``. The same config and metadata also go into each sub-run
    that already has event files (``train/``, ``validation/`` of the Keras TensorBoard
    callback): the projector lists those too (it finds the checkpoint in their parent
    folder), and the one it selects first must have the titles as well.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    categories = [""] * len(titles) if categories is None else categories
    if not len(titles) == len(categories) == len(embeddings):
        raise ValueError(f"write_projector: {len(embeddings)} embeddings, {len(titles)} titles and {len(categories)} categories")
    rows = "".join(f"{_tsv_cell(title, '(untitled)')}\t{_tsv_cell(category, '(none)')}\n" for title, category in zip(titles, categories))
    variable = tf.Variable(np.asarray(embeddings, np.float32), trainable=False, name=tensor_name)
    tf.train.Checkpoint(**{tensor_name: variable}).save(str(run_dir / "embeddings.ckpt"))
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = f"{tensor_name}/.ATTRIBUTES/VARIABLE_VALUE"
    embedding.metadata_path = "metadata.tsv"
    sub_runs = [child for child in sorted(run_dir.iterdir()) if child.is_dir() and any(child.glob("events.out.tfevents.*"))]
    for folder in [run_dir, *sub_runs]:
        (folder / "metadata.tsv").write_text("title\tcategory\n" + rows, encoding="utf-8")
        projector.visualize_embeddings(str(folder), config)
