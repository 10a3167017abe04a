"""Benchmark output: markdown tables, JSON, a PNG chart and TensorBoard HParams runs.

``write_all(document, out_dir)`` writes, for one ``run_bench`` document:

- ``bench.json``: the document itself (every metric of every row, timings, memory,
  the serving-vs-numpy comparison, machine and command);
- ``bench.md``: one table per protocol (tfrec rows first, then peers) with ratios to
  the protocol's reference peer (``peers.REFERENCE_PEER``), and the serving-vs-numpy
  table;
- ``bench.png``: bar charts (matplotlib, Agg backend) of each protocol's main metric
  and of the protocol-T fit times; without matplotlib (a bench extra), no chart and a
  note (``NO_CHART_NOTE``) in the markdown, the JSON and the other files as always;
- ``runs/hparams/<stamp>/``: one TensorBoard run per row with its hparams (model, data,
  split, kind, protocol) and figures (the tags of ``tfrec train``), and the HParams
  experiment of ``runs/hparams`` (headline metrics first), so the dashboard compares rows.

``write_scale(document, out_dir)`` writes, for one ``run_scale`` document, ``scale.json``
and ``scale.md``: every entry at every size (fit, fit CPU, fit memory, the ratio to the
model's fit-time peer, export, peak memory, serving speed), the table of each model next
to its peer (``peer_table``), the data generation time and memory per size
(``data_table``) and the largest size each entry handled.
"""
from __future__ import annotations

import importlib.util
import json
import math
import time
from pathlib import Path
from typing import Any

PROTOCOL_TITLES = {
    "R": "Protocol R: rating prediction",
    "T": "Protocol T: top-N ranking, temporal per-user 80/20",
    "S": "Protocol S: next item, leave last out",
}
MAIN_METRIC = {"R": "rmse", "T": "ndcg@10", "S": "hr@10"}
LOWER_IS_BETTER = {"rmse", "mae"}
COLUMNS = {
    "R": [("RMSE", "rmse", 4), ("MAE", "mae", 4), ("fit s/fold", "fit_s", 2), ("peak MiB", "peak_mb", 0)],
    "T": [
        ("R@10", "recall@10", 4), ("R@20", "recall@20", 4), ("NDCG@10", "ndcg@10", 4), ("HR@10", "hr@10", 4),
        ("MAP@10", "map@10", 4), ("Cov@10", "coverage@10", 4), ("fit s", "fit_s", 2), ("fit CPU s", "fit_cpu_s", 2), ("users/s", "users_per_s", 0),
        ("p50 ms", "latency_p50_ms", 2), ("p99 ms", "latency_p99_ms", 2), ("peak MiB", "peak_mb", 0),
    ],
    "S": [
        ("HR@10", "hr@10", 4), ("MRR@10", "mrr@10", 4), ("fit s", "fit_s", 2), ("fit CPU s", "fit_cpu_s", 2), ("users/s", "users_per_s", 0),
        ("p50 ms", "latency_p50_ms", 2), ("p99 ms", "latency_p99_ms", 2), ("peak MiB", "peak_mb", 0),
    ],
}
#: The note of a report written without matplotlib.
NO_CHART_NOTE = "no chart: matplotlib is not installed (pip install -e .[bench])"


def chart_available() -> bool:
    """Whether matplotlib (a bench extra) can be imported, for the chart."""
    return importlib.util.find_spec("matplotlib") is not None


def _add_note(document: dict, note: str) -> None:
    notes = document.setdefault("notes", [])
    if note not in notes:
        notes.append(note)


#: The evaluation metrics among ``SCALAR_KEYS`` (TensorBoard tags ``eval_<split>/<metric>``).
EVAL_KEYS = ("rmse", "mae", "recall@10", "recall@20", "ndcg@10", "hr@10", "map@10", "mrr@10", "coverage@10")
SCALAR_KEYS = (
    *EVAL_KEYS,
    "fit_s", "fit_cpu_s", "export_s", "users_per_s", "latency_p50_ms", "latency_p99_ms", "peak_mb", "base_mb",
)


def _fmt(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (int, float)):
        if digits == 0:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _reference(rows: list[dict], protocol: str) -> dict | None:
    from tfrec.bench.peers import REFERENCE_PEER

    key = REFERENCE_PEER.get(protocol)
    return next((r for r in rows if r["kind"] == "peer" and r["model"] == key and r["status"] == "ok"), None)


def protocol_table(rows: list[dict], protocol: str) -> str:
    """Markdown table of one protocol's rows (tfrec first), with ratios to the reference peer."""
    rows = [r for r in rows if r["protocol"] == protocol]
    rows.sort(key=lambda r: r["kind"] != "tfrec")  # stable: tfrec rows, then peers, in run order
    ref = _reference(rows, protocol)
    main = MAIN_METRIC[protocol]
    columns = [c for c in COLUMNS[protocol] if any(isinstance(r.get(c[1]), (int, float)) for r in rows)]  # drop empty columns
    header = ["model"] + [title for title, _, _ in columns]
    if ref is not None:
        header += [f"{_short(main)} / {ref['model']}", f"fit s / {ref['model']}"]
    body = []
    for row in rows:
        if row["status"] != "ok":
            body.append([row["label"], f"failed: {row.get('error', '')}"] + [""] * (len(header) - 2))
            continue
        cells = [row["label"]] + [_fmt(row.get(key), digits) for _, key, digits in columns]
        if ref is not None:
            quality = row.get(main, float("nan")) / ref[main] if ref.get(main) else float("nan")
            fit = row.get("fit_s", float("nan")) / ref["fit_s"] if ref.get("fit_s") else float("nan")
            cells += [_fmt(quality, 3), _fmt(fit, 2)]
        body.append(cells)
    return _table(header, body)


def _short(metric: str) -> str:
    return {"rmse": "RMSE", "ndcg@10": "NDCG@10", "hr@10": "HR@10"}.get(metric, metric)


def serving_table(rows: list[dict]) -> str | None:
    found = [r for r in rows if r.get("serving_vs_numpy")]
    if not found:
        return None
    header = [
        "model", "users x items x dim", "numpy ms", "numpy + mask ms", "numpy 1 thread ms", "numpy + mask 1 thread ms",
        "SavedModel signature ms", "ServedModel.recommend ms", "signature / best numpy+mask", "recommend / best numpy+mask", "same top-10",
    ]
    body = []
    for row in found:
        c = row["serving_vs_numpy"]
        body.append([
            row["label"], f"{c['users']:,} x {c['items']:,} x {c['dim']}", _fmt(c["numpy_ms"], 2), _fmt(c["numpy_masked_ms"], 2),
            _fmt(c.get("numpy_1thread_ms"), 2), _fmt(c.get("numpy_masked_1thread_ms"), 2),
            _fmt(c["savedmodel_signature_ms"], 2), _fmt(c["savedmodel_recommend_ms"], 2),
            _fmt(c["ratio_signature_vs_numpy_masked"], 2) + "x", _fmt(c["ratio_recommend_vs_numpy_masked"], 2) + "x",
            f"{100 * c['topk_agreement']:.1f}%",
        ])
    return _table(header, body)


def markdown(document: dict) -> str:
    rows = document["rows"]
    summary = document.get("data_summary") or {}
    machine = document.get("machine", {})
    lines = [f"## tfrec benchmark: {summary.get('name', document['data'])}", ""]
    if summary:
        lines.append(f"{summary['interactions']:,} interactions, {summary['users']:,} users, {summary['items']:,} items.")
    if document.get("command"):
        lines.append(f"Reproduce: `{document['command']}`")
    lines.append(
        f"Run {document['created']} on {machine.get('cpus', '?')} CPUs, {machine.get('memory_gib', '?')} GiB; "
        f"TensorFlow {machine.get('tensorflow', '?')}, implicit {machine.get('implicit', '-')}, "
        f"scikit-surprise {machine.get('scikit-surprise', '-')}; total {document['seconds'] / 60:.1f} min"
        + (f"; load average at the start {machine['load_average_1m']:.1f}" if "load_average_1m" in machine else "")
        + " (shared cores: compare times as ratios within one run)."
    )
    lines.append("")
    lines.append(
        "Quality: the metric code of `tfrec.evaluation` for every row (tfrec models through their reloaded SavedModel). "
        "fit s: wall seconds of one fit (protocol R: mean per fold); "
        "fit CPU s: CPU seconds (user + system, all threads) of the row's process during that fit (protocol R: per fold, with prediction). "
        "users/s: batch top-10 over every test user in batches of 1024; "
        "p50/p99: one-user requests (tfrec: through the reloaded SavedModel; peers: their numpy `recommend`). "
        + ("peak MiB: `ru_maxrss` of the row's own process after fit + export (includes the Python/TensorFlow runtime and the data). "
           if document.get("isolated", True) else "peak MiB: in-process run, cumulative. ")
        + "Ratios: this row / the reference peer (for RMSE lower is better; for the others higher)."
    )
    for protocol in document["protocols"]:
        if not any(r["protocol"] == protocol for r in rows):
            continue
        lines += ["", f"### {PROTOCOL_TITLES[protocol]}", "", protocol_table(rows, protocol)]
    serving = serving_table(rows)
    if serving:
        lines += [
            "", "### Serving path vs numpy brute force",
            "",
            "Batch top-10 for every training user over the whole catalogue, best of 5: numpy `U @ V.T` + `argpartition` "
            "(with and without setting the user's train items to -inf; with the default BLAS threads and with one) on the embeddings "
            "extracted from the fitted model (explicit MF's biases as two extra columns), "
            "against the reloaded SavedModel (its `recommend` signature called directly, and through `ServedModel.recommend`, "
            "which adds input checks and string conversion). Target: SavedModel within 2x of the faster numpy-with-mask time.",
            "",
            serving,
        ]
    if document.get("notes"):
        lines += ["", "Notes:"] + [f"- {note}" for note in document["notes"]]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------- chart
def plot(document: dict, path: Path) -> Path | None:
    """Bar charts of each protocol's main metric and the protocol-T fit seconds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in document["rows"] if r["status"] == "ok"]
    panels = []
    for protocol in ("R", "T", "S"):
        metric = MAIN_METRIC[protocol]
        chosen = [r for r in rows if r["protocol"] == protocol and metric in r]
        if chosen:
            panels.append((f"{protocol}: {_short(metric)}" + (" (lower is better)" if metric in LOWER_IS_BETTER else ""), metric, chosen, False))
    timed = [r for r in rows if r["protocol"] == "T" and r.get("fit_s") is not None]
    if timed:
        panels.append(("T: fit seconds (log)", "fit_s", timed, True))
    if not panels:
        return None
    n_cols = min(2, len(panels))
    n_rows = math.ceil(len(panels) / n_cols)
    height = max(2.6, 0.3 * max(len(p[2]) for p in panels) + 1.0)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(6.5 * n_cols, height * n_rows), squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    for ax, (title, metric, chosen, log_scale) in zip(axes.ravel(), panels):
        labels = [r["label"] if r["kind"] == "tfrec" and len(r["label"]) <= 32 else r["label"].split(" (")[0] for r in chosen]
        values = [max(r[metric], 1e-3) if log_scale else r[metric] for r in chosen]
        colors = ["tab:orange" if r["kind"] == "tfrec" else "tab:gray" for r in chosen]
        y = list(range(len(chosen)))
        ax.barh(y, values, color=colors)
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        if log_scale:
            ax.set_xscale("log")
        elif metric in LOWER_IS_BETTER:
            ax.set_xlim(left=0.9 * min(values), right=1.04 * max(values))
        else:
            ax.set_xlim(right=1.15 * max(values))
        for yi, value in zip(y, values):
            ax.text(value, yi, f" {value:.3g}", va="center", fontsize=7)
    name = (document.get("data_summary") or {}).get("name", document["data"])
    fig.suptitle(f"tfrec (orange) vs peers (gray) on {name}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_scale(document: dict, path: Path) -> Path | None:
    """Fit seconds against interactions, log-log, one line per entry (tfrec solid, peers
    dashed); None when no entry has two sizes or matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for r in document["rows"]:
        if r["kind"] != "data" and r["status"] == "ok" and r.get("fit_s"):
            series.setdefault((r["kind"], r["label"]), []).append((r["size"], r["fit_s"]))
    series = {key: sorted(points) for key, points in series.items() if len(points) > 1}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 5.0))
    for (kind, label), points in sorted(series.items()):
        sizes, seconds = zip(*points)
        style = {"linestyle": "-", "marker": "o"} if kind == "tfrec" else {"linestyle": "--", "marker": "s", "alpha": 0.8}
        ax.plot(sizes, seconds, label=label if len(label) <= 40 else label.split(" (")[0], **style)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("interactions (synthetic)")
    ax.set_ylabel("fit seconds")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("fit time against data size: tfrec (solid) and peers (dashed)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -------------------------------------------------------------- TensorBoard
def _row_split(row: dict) -> str:
    """The split a bench row was measured on, as a run-name part: ``temporal``, ``leave-last``,
    ``u1-u5`` (the mean over the official folds) or ``random`` (protocol R without fold files)."""
    from tfrec.bench.runner import PROTOCOL_SPLIT

    if row["protocol"] in PROTOCOL_SPLIT:
        return PROTOCOL_SPLIT[row["protocol"]]
    return "u1-u5" if "u1..u5" in row.get("split_note", "") else "random"


def _row_tag(key: str, split: str) -> str:
    """A row's figure as the scalar tag ``tfrec train`` uses: ``eval_<split>/<metric>``,
    ``fit/fit_seconds``; the other bench figures ``bench/<key>``."""
    from tfrec.models.tensorboard import FIT_SECONDS_TAG, eval_tag

    if key == "fit_s":
        return FIT_SECONDS_TAG
    return eval_tag(split, key) if key in EVAL_KEYS else f"bench/{key}"


def tensorboard_hparams(document: dict, logdir: Path) -> Path:
    """One run per row under ``logdir/<stamp>`` (trial id ``<stamp>/<row>``): hparams
    ``model``, ``data``, ``split``, ``kind``, ``protocol`` (the five columns TensorBoard
    shows first) and the row's figures as scalars at step 0 under the tags of ``tfrec
    train`` (``eval_<split>/<metric>``, ``fit/fit_seconds``; others ``bench/<key>``); and
    the HParams experiment of ``logdir`` (``tfrec.models.tensorboard.write_experiment``,
    merged with earlier benches): each protocol's headline metrics first."""
    from tensorboard.plugins.hparams import api as hp

    from tfrec._keras import tf
    from tfrec.models import tensorboard

    root = logdir / time.strftime("%Y%m%d-%H%M%S")
    n = 1
    while root.exists():
        n += 1
        root = root.with_name(f"{root.name.split('~')[0]}~{n}")
    rows = [r for r in document["rows"] if r["status"] == "ok"]
    data_name = (document.get("data_summary") or {}).get("name", document["data"])
    lead = {
        "model": sorted({r["model"] for r in rows}),
        "data": [data_name],
        "split": sorted({_row_split(r) for r in rows}),
        "kind": ["tfrec", "peer"],
        "protocol": ["R", "T", "S"],
    }
    splits = {(r["protocol"], _row_split(r)) for r in rows}
    tags = [tag for protocol, split in sorted(splits, key=lambda s: ("TRS".index(s[0]), s[1])) for tag in tensorboard.headline_tags(split, protocol)]
    tags += [_row_tag(key, _row_split(r)) for key in SCALAR_KEYS for r in rows if isinstance(r.get(key), (int, float))]
    root.mkdir(parents=True)
    tensorboard.write_experiment(logdir, [tensorboard.hparam_info(name, str, values, differs=True) for name, values in lead.items()], list(dict.fromkeys(tags)))
    for row in rows:
        run = root / f"{row['protocol']}-{row['kind']}-{row.get('entry', row['model']).replace(':', '-').replace('=', '')}"
        split = _row_split(row)
        with tf.summary.create_file_writer(str(run)).as_default():
            hparams = {"model": row["model"], "data": data_name, "split": split, "kind": row["kind"], "protocol": row["protocol"]}
            hp.hparams(hparams, trial_id=f"{root.name}/{run.name}")
            for key in SCALAR_KEYS:
                if isinstance(row.get(key), (int, float)):
                    tf.summary.scalar(_row_tag(key, split), float(row[key]), step=0)
    return root


# ------------------------------------------------------------------ writers
def write_all(document: dict, out_dir: Path, *, json_path=None, tensorboard: bool = True, chart: bool = True) -> dict[str, Path]:
    out_dir = Path(out_dir)
    written: dict[str, Path] = {}
    if tensorboard:
        document["tensorboard"] = str(tensorboard_hparams(document, out_dir / "runs" / "hparams"))
    if chart and not chart_available():
        _add_note(document, NO_CHART_NOTE)
    elif chart:
        png = plot(document, out_dir / "bench.png")
        if png:
            document["chart"] = str(png)
            written["png"] = png
    text = markdown(document)
    (out_dir / "bench.md").write_text(text, encoding="utf-8")
    written["md"] = out_dir / "bench.md"
    for path in {out_dir / "bench.json", *( [Path(json_path)] if json_path else [])}:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
        written.setdefault("json", path)
    print(text, flush=True)
    board = f"; TensorBoard: tensorboard --logdir {out_dir / 'runs'}" if tensorboard else ""
    print(f"wrote {', '.join(str(p) for p in written.values())}{board}", flush=True)
    return written


def _ratio(value: Any) -> str:
    return f"{value:.2f}x" if isinstance(value, (int, float)) else ""


def peer_table(rows: list[dict]) -> str | None:
    """Each tfrec model next to its fit-time peer at every size where both ran (the
    README's "fit time next to peers" table): fit seconds, ratio, fit memory growth."""
    paired = [r for r in rows if r["kind"] == "tfrec" and r.get("peer")]
    if not paired:
        return None
    header = ["model", "interactions", "tfrec fit s", "peer", "peer fit s", "ratio", "tfrec fit MiB", "peer fit MiB"]
    body = []
    for r in paired:
        name = r["label"].removeprefix("tfrec ")
        if r["status"] != "ok" or "peer_fit_s" not in r:
            peer = next((p for p in rows if p["kind"] == "peer" and p["model"] == r["peer"] and p["size"] == r["size"]), {})
            why = r.get("error") if r["status"] != "ok" else peer.get("error")
            body.append([f"`{name}`", f"{r['size']:,}", _fmt(r.get("fit_s"), 2), r["peer_label"], "", f"failed: {why}", "", ""])
            continue
        body.append([f"`{name}`", f"{r['size']:,}", _fmt(r["fit_s"], 2), r["peer_label"], _fmt(r["peer_fit_s"], 2), _ratio(r["fit_ratio"]),
                     _fmt(r.get("fit_mb"), 0), _fmt(r.get("peer_fit_mb"), 0)])
    return _table(header, body)


def data_table(rows: list[dict]) -> str | None:
    """Per size: the data and what generating it cost (the median of the size's jobs,
    each of which generates the same data in its own process)."""
    sizes = sorted({r["size"] for r in rows})
    header = ["size", "interactions", "users", "items", "sessions", "generate s", "generate CPU s", "peak MiB", "kept MiB", "measured"]
    body = []
    for size in sizes:
        loaded = [r for r in rows if r["size"] == size and r["status"] == "ok" and isinstance(r.get("load_s"), (int, float))]
        if not loaded:
            continue
        best = sorted(loaded, key=lambda r: r["load_s"])[(len(loaded) - 1) // 2]
        d = best.get("data") or {}
        body.append([f"{size:,}", _fmt(d.get("interactions"), 0), _fmt(d.get("users"), 0), _fmt(d.get("items"), 0), _fmt(d.get("sessions"), 0),
                     _fmt(best["load_s"], 2), _fmt(best.get("load_cpu_s"), 2), _fmt(best.get("load_peak_mb"), 0), _fmt(best.get("load_kept_mb"), 0),
                     f"median of {len(loaded)}"])
    return _table(header, body) if body else None


def scale_markdown(document: dict) -> str:
    rows = document["rows"]
    entries = [r for r in rows if r["kind"] != "data"]
    machine = document.get("machine", {})
    repeat = document.get("repeat", 1)
    lines = [
        "## tfrec scale run (synthetic data)",
        "",
        f"Sizes {', '.join(f'{s:,}' for s in document['sizes'])} interactions (MovieLens-20M-like users/items per size); "
        + (("each model fits on each user's first 80% of interactions, is exported, reloaded, ranked for a seeded sample of "
            "test users (NDCG@10, Recall@10 on the held-out 20%) and timed, in its own process, " if document.get("holdout") else
            "each model fits on all interactions, is exported, reloaded and timed on a sample of users, in its own process, ")
           if entries else "data generation only, in its own process, ")
        + f"limits {document['max_seconds']:.0f} s and {document['max_memory_gb']:.0f} GiB per model"
        + (f"; every entry ran {repeat} times per size, interleaved, and each row is its median fit" if repeat > 1 else "")
        + ("" if document.get("isolated", True) else "; in-process run: memory figures are cumulative, no limits applied")
        + f". {machine.get('cpus', '?')} CPUs, {machine.get('memory_gib', '?')} GiB. Run {document['created']}.",
    ]
    if document.get("command"):
        lines.append(f"Reproduce: `{document['command']}`")
    if entries:
        quality = bool(document.get("holdout"))
        header = ["model", "interactions", "users", "items", *(["NDCG@10", "R@10"] if quality else []), "fit s", "fit CPU s", "fit MiB",
                  "fit s / peer", "export s", "peak MiB", "base MiB", "users/s", "p50 ms", "status"]
        body = []
        for r in entries:
            d = r.get("data") or {}
            body.append([
                r["label"], f"{r['size']:,}", _fmt(d.get("users"), 0), _fmt(d.get("items"), 0),
                *([_fmt(r.get("ndcg@10"), 4), _fmt(r.get("recall@10"), 4)] if quality else []),
                _fmt(r.get("fit_s"), 1), _fmt(r.get("fit_cpu_s"), 1),
                _fmt(r.get("fit_mb"), 0), _ratio(r.get("fit_ratio")), _fmt(r.get("export_s"), 1),
                _fmt(r.get("peak_mb") or r.get("watched_peak_mb"), 0), _fmt(r.get("base_mb"), 0), _fmt(r.get("users_per_s"), 0),
                _fmt(r.get("latency_p50_ms"), 2), "ok" if r["status"] == "ok" else f"failed: {r.get('error')}",
            ])
        lines += ["", _table(header, body)]
    pairs = peer_table(rows)
    if pairs:
        lines += [
            "", "### Fit time next to the peers",
            "",
            (
                "Each tfrec model and its fit-time peer fitted one after the other on the same data, each in a fresh process. "
                "fit s: tfrec's whole `tfrec.fit` (vocabularies, each user's items, the adapt pass, the model's own work, tracing "
                "the serving functions); the peer's `fit` with its id factorisation. ratio = tfrec fit s / peer fit s. "
                "fit MiB: peak resident memory during the fit minus the resident memory just before it (data loaded)."
            ),
            "",
            pairs,
        ]
    data = data_table(rows)
    if data:
        lines += [
            "", "### Data",
            "",
            (
                "Generating the synthetic data (`tfrec.data.load_data(\"synthetic:N\")`) in each job's process: wall and CPU seconds, "
                "peak resident memory over the memory before it (imports excluded) and what the returned data still holds."
            ),
            "",
            data,
        ]
    if entries:
        lines += ["", "Largest size handled:"]
        for label in dict.fromkeys(r["label"] for r in entries):
            ok = [r["size"] for r in entries if r["label"] == label and r["status"] == "ok"]
            bad = [r for r in entries if r["label"] == label and r["status"] != "ok"]
            text = f"{max(ok):,}" if ok else "none"
            if bad:
                text += f" (at {bad[0]['size']:,}: {bad[0].get('error')})"
            lines.append(f"- {label}: {text}")
    return "\n".join(lines) + "\n"


def write_scale(document: dict, out_dir: Path, *, json_path=None) -> None:
    out_dir = Path(out_dir)
    chart = plot_scale(document, out_dir / "scale.png") if chart_available() else None
    if not chart_available():
        _add_note(document, NO_CHART_NOTE)
    text = scale_markdown(document) + (f"\n![fit time against data size]({chart.name})\n" if chart else "")
    if document.get("notes"):
        text += "\nNotes:\n" + "".join(f"- {note}\n" for note in document["notes"])
    (out_dir / "scale.md").write_text(text, encoding="utf-8")
    for path in {out_dir / "scale.json", *([Path(json_path)] if json_path else [])}:
        path.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    print(text, flush=True)
