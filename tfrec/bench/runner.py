"""Run protocols R, T and S for tfrec models and their peers, one fresh process per job.

A *job* is one (entry, protocol) pair, where an entry is a tfrec model (``kind
"tfrec"``) or a peer (``kind "peer"``, see ``tfrec.bench.peers``). Each job runs in a
fresh child process (``python -m tfrec.bench.worker``), so its peak resident memory
(``ru_maxrss``) is its own, and a per-job time limit can end it without ending the run.
The parent never loads the data: it builds jobs, runs them one at a time (2 cores:
jobs never run side by side, so timings are not disturbed by each other), collects
their JSON results and writes the report (``tfrec.bench.report``).

What one job measures (on the data named by the job's spec):

- protocol R: for each fold (``u1`` .. ``u5`` when the data has the official fold
  files; otherwise one seeded random 80/20 split, see `random_split`) fit, then RMSE
  and MAE of every test pair (tfrec: the ``score`` signature through
  ``tfrec.evaluation.evaluate``; peers: ``predict``, clipped to the training range,
  training mean where the peer cannot predict); the mean over folds. tfrec models that
  do not predict ratings take no part.
- protocols T and S: fit on the split's train part; tfrec models are exported
  (``tfrec.export.export_model``), reloaded (``ServedModel.load``) and evaluated through
  the reloaded SavedModel (``tfrec.evaluation.evaluate``); peers are evaluated with the
  very same metric function (``ranking_metrics``) on their ``recommend``. Then speed:
  batch top-10 throughput (users/s, every test user, batches of 1024, best of 3
  passes) and single-request latency (p50/p99 over 200 one-user requests) through the
  reloaded SavedModel (peers: through their numpy ``recommend``).
- memory: ``ru_maxrss`` of the child after data loading and splitting ("base") and
  after fit + export ("peak"), in MiB. Peak includes the TensorFlow runtime and the
  data (base); peak - base is what fitting and exporting added on top. "fit MiB"
  (protocols T and S) is the fit's own growth: the peak resident memory during the fit
  minus the resident memory just before it (Linux: ``VmHWM`` after resetting it through
  ``/proc/self/clear_refs``; elsewhere peak - base).
- data: wall and CPU seconds of loading the data (for ``synthetic:N``: generating it),
  its peak growth over the memory before loading and what the loaded data still holds.
- serving vs numpy (protocol T, tfrec models with user and item embedding matrices,
  e.g. ``mf`` and ``two_tower``): batch top-10 for every training user from the
  reloaded SavedModel against numpy brute force (matrix product + argpartition, with
  and without the train-item mask) on the same embeddings, in the same process.

Scale mode (``run_scale``): synthetic data of growing size; each model fits on all of
it, is exported, reloaded and timed on a sample of users; a model that fails, runs
out of its time limit or passes the memory limit is not tried at larger sizes. With
peers (``paired``: each model's fit-time peer, ``peers.FIT_PEER``), each model and its
peer run one after the other at every size, and the model's row gets the ratio of its
fit seconds to the peer's, measured in the same run; ``repeat`` runs every entry several
times, interleaved, and keeps each one's median fit. Scale fits write no TensorBoard
run (its logging would count in the fit time). Models are names or variants
``name:key=value[:key=value]`` (e.g. ``item_knn:shrinkage=5``), so one run can hold a model
at two settings.
"""
from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

PROTOCOLS = ("R", "T", "S")
FOLDS = ("u1", "u2", "u3", "u4", "u5")
PROTOCOL_SPLIT = {"T": "temporal", "S": "leave-last"}
#: Metric keys kept per protocol (all of them go to JSON; tables show these).
PROTOCOL_METRICS = {
    "R": ("rmse", "mae"),
    "T": ("recall@10", "recall@20", "ndcg@10", "hr@10", "map@10", "coverage@10"),
    "S": ("hr@10", "mrr@10"),
}
RANDOM_SPLIT_SEED = 0
SPEED_BATCH = 1024
LATENCY_REQUESTS = 200
DEFAULT_MAX_SECONDS = 1800.0
DEFAULT_MAX_MEMORY_GB = 20.0


# ------------------------------------------------------------------- helpers
def log(message: str, verbose: int = 1) -> None:
    if verbose:
        print(message, flush=True)


#: The process's peak before the last `start_peak_window` (which resets the kernel's).
_EARLIER_PEAK_MB = 0.0


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (``ru_maxrss``, KiB on Linux), MiB."""
    return max(_EARLIER_PEAK_MB, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)


def _status_mb(key: str) -> float | None:
    """A ``/proc/self/status`` memory line (``VmRSS``, ``VmHWM``) in MiB; None off Linux."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def start_peak_window() -> dict[str, Any]:
    """Start measuring the peak memory of a phase: remember the current resident memory
    and reset the kernel's peak to it (``/proc/self/clear_refs``), keeping the process's
    earlier peak for `peak_rss_mb`. Pass the result to `peak_growth_mb`."""
    global _EARLIER_PEAK_MB
    rss = _status_mb("VmRSS")
    earlier = peak_rss_mb()
    reset = False
    if rss is not None:
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            reset = True
        except OSError:
            pass
    if reset:
        _EARLIER_PEAK_MB = earlier
    return {"rss_mb": rss if rss is not None else earlier, "reset": reset}


def peak_growth_mb(window: dict[str, Any]) -> float:
    """Peak resident memory since `start_peak_window` minus the memory at its start, MiB
    (without the reset: the process peak minus that memory, an upper bound)."""
    peak = _status_mb("VmHWM") if window["reset"] else None
    if peak is None:
        peak = peak_rss_mb()
    return max(0.0, peak - window["rss_mb"])


def parse_size(text: str) -> int:
    """'20M' -> 20_000_000, '500k' -> 500_000 (the data package's ``parse_count``)."""
    from tfrec.data.movielens import parse_count

    return parse_count(text)


def load_bench_data(spec: str, columns: dict[str, str | None] | None = None):
    """``demo``, ``synthetic:N`` (N like 1M or 20M), a MovieLens folder or a ratings CSV
    (``columns``: its user, item, rating, time columns, see ``tfrec.data.load_data``)."""
    from tfrec.data import load_data

    return load_data(spec, columns=columns)


def has_official_folds(data) -> bool:
    source = getattr(data, "source_dir", None)
    return bool(source) and all((Path(source) / f"{fold}.base").is_file() and (Path(source) / f"{fold}.test").is_file() for fold in FOLDS)


def random_split(data, seed: int = RANDOM_SPLIT_SEED, test_share: float = 0.2):
    """Protocol R without fold files: a random ``test_share`` of the interactions (seeded
    permutation, ``numpy.random.default_rng(seed)``) is the test set, the rest train."""
    from tfrec.data.splits import Split

    frame = data.interactions
    order = np.random.default_rng(seed).permutation(len(frame))
    n_test = int(round(len(frame) * test_share))
    test = frame.iloc[np.sort(order[:n_test])].reset_index(drop=True)
    train = frame.iloc[np.sort(order[n_test:])].reset_index(drop=True)
    return Split(name=f"random80-seed{seed}", protocol="R", train=data.with_interactions(train), test=test)


#: Scale runs with a hold-out rank for at most this many test users (a seeded sample).
HOLDOUT_USERS = 10_000


def holdout_split(data, max_users: int = HOLDOUT_USERS, seed: int = RANDOM_SPLIT_SEED):
    """The temporal split (each user's last 20% held out) with its test rows restricted
    to a seeded sample of at most ``max_users`` test users, so that ranking them stays
    cheap at 20M; every tfrec model and peer of a run sees the same sample."""
    from tfrec.data import make_split
    from tfrec.data.splits import Split

    split = make_split(data, "temporal")
    users = np.sort(split.test["user_id"].astype(str).unique())
    if len(users) > max_users:
        chosen = np.random.default_rng(seed).choice(users, size=max_users, replace=False)
        test = split.test[split.test["user_id"].astype(str).isin(set(chosen))].reset_index(drop=True)
        return Split(name=f"{split.name}-{max_users}-users", protocol=split.protocol, train=split.train, test=test)
    return split


def protocol_splits(data, protocol: str) -> tuple[list, str]:
    """The splits of one protocol and a note on how they were made."""
    from tfrec.data import make_split

    if protocol == "R":
        if has_official_folds(data):
            return [make_split(data, fold) for fold in FOLDS], "official folds u1..u5 (mean)"
        return [random_split(data)], f"no fold files: one random 80/20 split (seed {RANDOM_SPLIT_SEED})"
    split = make_split(data, PROTOCOL_SPLIT[protocol])
    return [split], f"split '{split.name}'"


def data_summary(data) -> dict[str, Any]:
    frame = data.interactions
    summary = {"name": data.name, "interactions": len(frame), "users": int(frame["user_id"].nunique()), "items": int(frame["item_id"].nunique())}
    if data.sessions is not None:
        summary["sessions"] = int(data.sessions["session_id"].nunique())
    return summary


def load_measured(spec: str, columns: dict[str, str | None] | None = None) -> tuple[Any, dict[str, float]]:
    """``load_bench_data(spec, columns)`` with its wall and CPU seconds, its peak memory growth
    and the memory the loaded data still holds (MiB over the memory before loading;
    imports happen first and are not counted)."""
    import importlib

    importlib.import_module("tfrec.data.synthetic")  # imports are not part of loading

    gc.collect()
    window = start_peak_window()
    start, cpu = time.perf_counter(), time.process_time()
    data = load_bench_data(spec, columns)
    stats = {"load_s": time.perf_counter() - start, "load_cpu_s": time.process_time() - cpu, "load_peak_mb": peak_growth_mb(window)}
    gc.collect()
    rss = _status_mb("VmRSS")
    if rss is not None:
        stats["load_kept_mb"] = max(0.0, rss - window["rss_mb"])
    return data, stats


# ------------------------------------------------------------- speed helpers
def measure_speed(
    recommend: Callable[[np.ndarray, int], Any],
    users: np.ndarray,
    *,
    k: int = 10,
    batch: int = SPEED_BATCH,
    passes: int = 3,
    requests: int = LATENCY_REQUESTS,
    max_users: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Batch throughput (users/s, best of ``passes`` over ``users`` in batches) and
    single-request latency (p50/p99 ms over ``requests`` one-user calls, random users)."""
    users = np.asarray(users, dtype=object)
    if max_users is not None:
        users = users[:max_users]
    recommend(users[: min(batch, len(users))], k)  # warm-up: tracing, caches
    best = math.inf
    for _ in range(passes):
        start = time.perf_counter()
        for i in range(0, len(users), batch):
            recommend(users[i : i + batch], k)
        best = min(best, time.perf_counter() - start)
    rng = np.random.default_rng(seed)
    picks = users[rng.integers(0, len(users), requests)]
    recommend(picks[:1], k)
    latencies = []
    for user in picks:
        start = time.perf_counter()
        recommend(np.array([user], dtype=object), k)
        latencies.append(time.perf_counter() - start)
    latencies = np.array(latencies) * 1000.0
    return {
        "users_per_s": len(users) / best,
        "speed_users": len(users),
        "latency_p50_ms": float(np.percentile(latencies, 50)),
        "latency_p99_ms": float(np.percentile(latencies, 99)),
    }


def _best_of(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def embedding_matrices(model) -> tuple[np.ndarray, np.ndarray] | None:
    """(user float32[n_users + 1, d], item float32[n_items + 1, d]) with
    ``score_candidates == user @ item.T`` for known users: the model's own
    ``embedding_matrices()`` (``mf``, ``two_tower``), or None for models without one."""
    own = getattr(model, "embedding_matrices", None)
    if not callable(own):
        return None
    users, items = own()
    return np.asarray(users, np.float32), np.asarray(items, np.float32)


def numpy_top_k(user_emb: np.ndarray, item_emb: np.ndarray, k: int, mask: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Brute force: scores = U V^T, optional -inf at (rows, cols) of ``mask``, argpartition,
    then the k winners sorted by score. Returns item column indices [B, k]."""
    scores = user_emb @ item_emb.T
    if mask is not None:
        scores[mask] = -np.inf
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def serving_vs_numpy(model, served, *, k: int = 10, repeats: int = 5, batch: int | None = None) -> dict[str, Any] | None:
    """Batch top-k for every training user: reloaded SavedModel vs numpy brute force on
    the model's own embeddings (same process, best of ``repeats``). None for models
    without user/item embedding matrices."""
    from tfrec._keras import tf

    found = embedding_matrices(model)
    if found is None:
        return None
    user_emb, item_emb = found[0][1:], found[1][1:]  # drop the out-of-vocabulary rows
    n_users, n_items = user_emb.shape[0], item_emb.shape[0]
    user_ids = model.users.ids.numpy()[1:].astype(str).astype(object)
    splits = model.user_items.row_splits.numpy()
    cols = model.user_items.item_indices.numpy() - 1
    rows = np.repeat(np.arange(len(splits) - 1), np.diff(splits)) - 1  # row 0 is the OOV user
    if batch is None:
        batch = n_users if n_users * n_items <= 50_000_000 else SPEED_BATCH
    bounds = [(s, min(s + batch, n_users)) for s in range(0, n_users, batch)]
    starts = np.searchsorted(rows, [b[0] for b in bounds] + [n_users])
    masks = [(rows[starts[j] : starts[j + 1]] - s, cols[starts[j] : starts[j + 1]]) for j, (s, _) in enumerate(bounds)]

    def numpy_plain():
        return [numpy_top_k(user_emb[s:e], item_emb, k) for s, e in bounds]

    def numpy_masked():
        return [numpy_top_k(user_emb[s:e], item_emb, k, masks[j]) for j, (s, e) in enumerate(bounds)]

    signature = served._functions["recommend"]
    id_batches = [tf.constant(user_ids[s:e], tf.string) for s, e in bounds]

    def saved_signature():
        return [signature(user_id=ids, history=tf.zeros([ids.shape[0], 0], tf.string), k=tf.constant(k, tf.int32)) for ids in id_batches]

    def saved_served():
        return [served.recommend(user_ids[s:e], k=k) for s, e in bounds]

    times = {
        "numpy_ms": _best_of(numpy_plain, repeats) * 1000,
        "numpy_masked_ms": _best_of(numpy_masked, repeats) * 1000,
        "savedmodel_signature_ms": _best_of(saved_signature, repeats) * 1000,
        "savedmodel_recommend_ms": _best_of(saved_served, repeats) * 1000,
    }
    try:  # multi-threaded BLAS can lose badly on busy shared cores: also time one thread
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1, user_api="blas"):
            times["numpy_1thread_ms"] = _best_of(numpy_plain, repeats) * 1000
            times["numpy_masked_1thread_ms"] = _best_of(numpy_masked, repeats) * 1000
    except ImportError:
        pass
    best_numpy = min(times["numpy_masked_ms"], times.get("numpy_masked_1thread_ms", math.inf))
    # agreement: the SavedModel's top-k sets equal numpy's masked top-k sets
    reference = np.concatenate(numpy_masked())
    served_ids = np.concatenate([out["item_ids"].numpy().astype(str) for out in saved_signature()])
    item_ids = model.items.ids.numpy()[1:].astype(str)
    agree = np.mean([set(a) == set(b) for a, b in zip(item_ids[reference], served_ids)])
    return {
        "users": int(n_users),
        "items": int(n_items),
        "dim": int(user_emb.shape[1]),
        "batch": int(batch),
        "k": k,
        **times,
        "numpy_masked_best_ms": best_numpy,
        "ratio_signature_vs_numpy_masked": times["savedmodel_signature_ms"] / best_numpy,
        "ratio_recommend_vs_numpy_masked": times["savedmodel_recommend_ms"] / best_numpy,
        "topk_agreement": float(agree),
    }


# ------------------------------------------------------------------ one job
def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = rows[0].keys()
    return {key: float(np.mean([r[key] for r in rows])) for key in keys}


def _tfrec_job(job: dict, splits: list, verbose: int) -> dict[str, Any]:
    from tfrec.evaluation import evaluate
    from tfrec.export import export_model
    from tfrec.models import make_model
    from tfrec.serving import ServedModel
    from tfrec.training import fit

    name, protocol, params = job["name"], job["protocol"], job.get("params", {})
    out: dict[str, Any] = {}
    if protocol == "R":
        folds, fit_times, cpu = [], [], time.process_time()
        for split in splits:
            result = fit(make_model(name, **params), split.train, verbose=0)
            fit_times.append(result.fit_seconds)
            metrics = evaluate(ServedModel.from_model(result.model), split)
            folds.append({key: metrics[key] for key in PROTOCOL_METRICS["R"]})
            log(f"    {split.name}: rmse {folds[-1]['rmse']:.4f} fit {fit_times[-1]:.2f}s", verbose)
        out.update(_mean(folds))
        out["fit_s"] = float(np.mean(fit_times))
        out["fit_cpu_s"] = (time.process_time() - cpu) / len(splits)  # includes evaluation
        out["peak_mb"] = peak_rss_mb()
        return out
    split = splits[0]
    model = make_model(name, **params)
    gc.collect()
    window, cpu = start_peak_window(), time.process_time()
    # scale runs time the fit alone: a TensorBoard run would log inside the timed fit
    result = fit(model, split.train, logdir=None if job.get("scale") else job.get("logdir"), split=split.name,
                 verbose=verbose if job.get("scale") else 0)
    out["fit_s"] = result.fit_seconds
    out["fit_cpu_s"] = time.process_time() - cpu
    out["fit_mb"] = peak_growth_mb(window)
    start = time.perf_counter()
    path = export_model(model, job["export_dir"], name=f"{entry_slug(job.get('entry', name))}-{protocol}")
    out["export_s"] = time.perf_counter() - start
    out["peak_mb"] = peak_rss_mb()
    out["savedmodel"] = str(path)
    out["tensorboard_run"] = str(result.run_dir) if result.run_dir else None
    log(f"    fitted in {out['fit_s']:.2f}s, exported in {out['export_s']:.2f}s to {path}", verbose)
    served = ServedModel.load(path)
    if not job.get("scale") or job.get("holdout"):
        metrics = evaluate(served, split)
        out.update(metrics)
    users = np.asarray(split.test["user_id"].drop_duplicates().astype(str).to_numpy(), dtype=object) if split.test is not None else None
    if users is None or len(users) == 0:
        users = model.users.ids.numpy()[1:].astype(str).astype(object)
    speed = measure_speed(lambda u, k: served.recommend(u, k=k), users, max_users=job.get("speed_users"), passes=1 if job.get("scale") else 3,
                          requests=50 if job.get("scale") else LATENCY_REQUESTS)
    out.update(speed)
    if protocol == "T" and job.get("serving_vs_numpy", True):
        comparison = serving_vs_numpy(model, served)
        if comparison is not None:
            out["serving_vs_numpy"] = comparison
    return out


def _peer_job(job: dict, splits: list, verbose: int) -> dict[str, Any]:
    from tfrec.bench.peers import make_peer
    from tfrec.data.dataset import sorted_ids
    from tfrec.evaluation import ranking_metrics, rating_metrics

    protocol = job["protocol"]
    out: dict[str, Any] = {}
    if protocol == "R":
        folds, fit_times, cpu = [], [], time.process_time()
        for split in splits:
            peer = make_peer(job["name"], **job.get("params", {}))
            start = time.perf_counter()
            peer.fit(split.train)
            fit_times.append(time.perf_counter() - start)
            low, mean, high = peer.rating_range
            predictions = peer.predict(split.test["user_id"].astype(str).to_numpy(), split.test["item_id"].astype(str).to_numpy())
            folds.append(rating_metrics(predictions, split.test["rating"].to_numpy(), clip=(low, high), fallback=mean))
            log(f"    {split.name}: rmse {folds[-1]['rmse']:.4f} fit {fit_times[-1]:.2f}s", verbose)
        out.update(_mean(folds))
        out["fit_s"] = float(np.mean(fit_times))
        out["fit_cpu_s"] = (time.process_time() - cpu) / len(splits)  # includes prediction
        out["peak_mb"] = peak_rss_mb()
        return out
    split = splits[0]
    peer = make_peer(job["name"], **job.get("params", {}))
    peer.preload()  # imports are not part of the fit (tfrec's are not either)
    gc.collect()
    window = start_peak_window()
    start, cpu = time.perf_counter(), time.process_time()
    peer.fit(split.train)
    out["fit_s"] = time.perf_counter() - start
    out["fit_cpu_s"] = time.process_time() - cpu
    out["fit_mb"] = peak_growth_mb(window)
    out["peak_mb"] = peak_rss_mb()
    if not job.get("scale") or job.get("holdout"):
        users = sorted_ids(split.test["user_id"])
        recommended = peer.recommend(users, k=min(20, len(peer.item_ids)))
        if recommended.shape[1] < 20:
            recommended = np.pad(recommended, ((0, 0), (0, 20 - recommended.shape[1])), constant_values="")
        metrics = ranking_metrics(users, recommended, split.test[["user_id", "item_id"]], n_catalog=len(peer.item_ids), ks=(10, 20))
        out.update({key: float(metrics[key]) for key in ("recall@10", "recall@20", "ndcg@10", "hr@10", "map@10", "mrr@10", "coverage@10")})
    users = np.asarray(split.test["user_id"].drop_duplicates().astype(str).to_numpy(), dtype=object)
    out.update(measure_speed(peer.recommend, users, max_users=job.get("speed_users"), passes=1 if job.get("scale") else 3,
                             requests=50 if job.get("scale") else LATENCY_REQUESTS))
    return out


def execute_job(job: dict, verbose: int = 1) -> dict[str, Any]:
    """Run one job in this process and return its result row (see the module docstring).
    A job of kind "data" only loads the data (the data columns of a scale run)."""
    started = time.perf_counter()
    data, load = load_measured(job["data"], job.get("columns"))
    if job["kind"] == "data":
        summary = data_summary(data)
        log(f"    data {summary['name']}: {summary['interactions']:,} interactions, loaded in {load['load_s']:.1f}s", verbose)
        return {**load, "data": summary, "base_mb": peak_rss_mb(), "peak_mb": peak_rss_mb(), "job_s": time.perf_counter() - started, "status": "ok"}
    if job.get("scale") and job.get("holdout"):
        splits = [holdout_split(data)]
        note = f"temporal hold-out: fit on each user's first 80%, ranked for {splits[0].test['user_id'].nunique():,} test users"
    elif job.get("scale"):
        from tfrec.data.splits import Split

        splits, note = [Split(name="all", protocol=job["protocol"], train=data, test=data.interactions)], "fit on all interactions"
    else:
        splits, note = protocol_splits(data, job["protocol"])
    summary = data_summary(data)
    del data
    base = peak_rss_mb()
    log(f"    data {summary['name']}: {summary['interactions']:,} interactions ({note}); base memory {base:.0f} MiB", verbose)
    run = _tfrec_job if job["kind"] == "tfrec" else _peer_job
    out = run(job, splits, verbose)
    out.update({**load, "base_mb": base, "job_s": time.perf_counter() - started, "split_note": note, "data": summary, "status": "ok"})
    return out


# ------------------------------------------------------------- the parent side
def _rss_of(pid: int) -> float:
    """Current resident memory of a process tree's root, MiB (0 when gone)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def run_isolated(job: dict, *, max_seconds: float, max_memory_mb: float, verbose: int) -> dict[str, Any]:
    """Run ``job`` in ``python -m tfrec.bench.worker``; end it (its process group only)
    when it passes ``max_seconds`` or ``max_memory_mb`` of resident memory."""
    with tempfile.TemporaryDirectory(prefix="tfrec-bench-") as tmp:
        job_file, result_file = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_file.write_text(json.dumps({**job, "verbose": verbose}))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            [sys.executable, "-m", "tfrec.bench.worker", str(job_file), str(result_file)],
            start_new_session=True,
            stdout=None if verbose else subprocess.DEVNULL,
            stderr=None if verbose > 1 else subprocess.DEVNULL,
            env=env,
        )
        start, reason, watched = time.perf_counter(), None, 0.0
        while process.poll() is None:
            time.sleep(0.25)
            rss = _rss_of(process.pid)
            watched = max(watched, rss)
            if time.perf_counter() - start > max_seconds:
                reason = f"timeout: over the {max_seconds:.0f} s limit"
            elif rss > max_memory_mb:
                reason = f"memory: over the {max_memory_mb:.0f} MiB limit"
            if reason:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                break
        elapsed = time.perf_counter() - start
        if result_file.is_file():
            result = json.loads(result_file.read_text())
        else:
            code = process.returncode
            why = reason or (f"killed by signal {-code} (out of memory?)" if code and code < 0 else f"worker exited with code {code}")
            result = {"status": "failed", "error": why}
        result["wall_s"] = elapsed
        result["watched_peak_mb"] = watched
        return result


def run_in_process(job: dict, *, verbose: int) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        result = execute_job(job, verbose=verbose)
    except Exception as error:
        result = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
    result["wall_s"] = time.perf_counter() - start
    result["memory_note"] = "in-process: ru_maxrss is cumulative over the jobs before this one"
    return result


def _label(kind: str, name: str) -> str:
    if kind == "tfrec":
        return f"tfrec {name}"
    if kind == "data":
        return "data only"
    from tfrec.bench.peers import PEERS

    return PEERS[name].label


def split_entry(entry: str) -> tuple[str, dict[str, Any]]:
    """A model entry: ``"item_knn"`` -> ("item_knn", {}); a variant
    ``"item_knn:shrinkage=5:min_support=2"`` -> ("item_knn", {"shrinkage": 5.0, "min_support": 2})
    (values parsed and checked as ``--param`` parses them)."""
    from tfrec.models import model_class, parse_param

    name, *settings = (part.strip() for part in entry.split(":"))
    model_class(name)
    return name, dict(parse_param(name, text) for text in settings if text)


def entry_slug(entry: str) -> str:
    """A file-name form of an entry: ``item_knn:shrinkage=5`` -> ``item_knn-shrinkage5``."""
    return entry.replace(":", "-").replace("=", "")


def plan_jobs(
    data: str, protocols: list[str], models: list[str], peers: list[str] | None, params: dict[str, dict] | None = None
) -> tuple[list[dict], list[str]]:
    """Jobs for every protocol: the tfrec models (entries, see `split_entry`) that apply,
    then the available peers. A model gets its preset for the protocol
    (``tfrec.models.registry.params_for``), overridden by ``params`` and the entry's variant."""
    from tfrec.bench.peers import PEERS, peers_for
    from tfrec.models import make_model
    from tfrec.models.registry import params_for

    jobs, notes = [], []
    params = params or {}
    for protocol in protocols:
        for entry in models:
            name, variant = split_entry(entry)
            model_params = params_for(name, protocol, **{**params.get(name, {}), **variant})  # the model's preset for the protocol, overridden
            if protocol == "R" and not make_model(name, **model_params).predicts_ratings:
                continue
            jobs.append({"kind": "tfrec", "name": name, "entry": entry, "protocol": protocol, "data": data, "params": model_params})
        for key in peers_for(protocol, peers):
            cls = PEERS[key]
            if not cls.available():
                note = f"peer {key} skipped: module '{cls.requires}' is not installed (pip install -e .[bench])"
                if note not in notes:
                    notes.append(note)
                continue
            jobs.append({"kind": "peer", "name": key, "protocol": protocol, "data": data, "params": params.get(key, {})})
    return jobs, notes


def resolve_models(models: str | list[str] | None) -> list[str]:
    """Model entries: 'all' (or None), 'none', or a comma list of names and variants
    (``item_knn:shrinkage=5``, see `split_entry`), each checked."""
    from tfrec.models import MODELS

    if models is None or models == "all":
        return list(MODELS)
    names = [m.strip() for m in models.split(",")] if isinstance(models, str) else list(models)
    names = [n for n in names if n]
    if names == ["none"]:
        return []
    for name in names:
        split_entry(name)
    return names


def resolve_peers(peers: str | list[str] | None, models: list[str] | None = None) -> list[str] | None:
    """None = every peer that is neither slow nor opt-in; 'none' = no peer; 'all' = every
    peer; 'paired' = the fit-time peer of each of ``models`` (``peers.FIT_PEER``); else a
    list of peer keys."""
    from tfrec.bench.peers import PEERS, paired_peers

    if peers is None or peers == "default":
        return None
    if peers == "all":
        return list(PEERS)
    if peers == "paired":
        return paired_peers(models or [])
    names = [p.strip() for p in peers.split(",")] if isinstance(peers, str) else list(peers)
    names = [n for n in names if n]
    if names == ["none"]:
        return []
    for name in names:
        if name not in PEERS:
            raise ValueError(f"unknown peer '{name}'; peers are: {', '.join(PEERS)}")
    return names


def _machine() -> dict[str, Any]:
    import platform

    info: dict[str, Any] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                            "load_average_1m": os.getloadavg()[0]}
    try:
        with open("/proc/meminfo") as handle:
            info["memory_gib"] = round(int(handle.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        from importlib.metadata import version

        for package in ("tensorflow", "tensorflow-recommenders", "numpy", "implicit", "scikit-surprise"):
            with contextlib.suppress(Exception):
                info[package] = version(package)
    except ImportError:
        pass
    return info


def run_jobs(jobs: list[dict], *, isolate: bool, max_seconds: float, max_memory_mb: float, verbose: int, out_dir: Path) -> list[dict]:
    rows = []
    for number, job in enumerate(jobs, start=1):
        job = {**job, "export_dir": str(out_dir / "savedmodels"), "logdir": str(out_dir / "runs" / "fits")}
        label = _label(job["kind"], job["name"])
        if job.get("params"):
            label += " (" + ", ".join(f"{key}={value}" for key, value in job["params"].items()) + ")"
        log(f"[{number}/{len(jobs)}] protocol {job['protocol']} | {label} | {job['data']}", verbose)
        if isolate:
            result = run_isolated(job, max_seconds=max_seconds, max_memory_mb=max_memory_mb, verbose=verbose)
        else:
            result = run_in_process(job, verbose=verbose)
        row = {"model": job["name"], "entry": job.get("entry", job["name"]), "kind": job["kind"], "label": label, "protocol": job["protocol"],
               "params": job.get("params", {}), **result}
        rows.append(row)
        if row["status"] == "ok" and job["kind"] == "data":
            log(f"    done in {row['wall_s']:.1f}s: loaded in {row['load_s']:.2f}s", verbose)
        elif row["status"] == "ok":
            main = {"R": "rmse", "T": "ndcg@10", "S": "hr@10"}[job["protocol"]]
            quality = f"{main} {row[main]:.4f}, " if main in row else ""
            log(f"    done in {row['wall_s']:.1f}s: {quality}fit {row.get('fit_s', float('nan')):.2f}s, peak {row.get('peak_mb', 0):.0f} MiB", verbose)
        else:
            log(f"    FAILED after {row['wall_s']:.1f}s: {row.get('error')}", verbose)
    return rows


def available_peers(keys: list[str]) -> tuple[list[str], list[str]]:
    """(the peers among ``keys`` whose library is installed, one note per peer skipped)."""
    from tfrec.bench.peers import PEERS

    kept, notes = [], []
    for key in keys:
        cls = PEERS[key]
        if cls.available():
            kept.append(key)
        else:
            notes.append(f"peer {key} skipped: module '{cls.requires}' is not installed (pip install -e .[bench])")
    return kept, notes


def run_bench(
    data: str = "demo",
    protocols: list[str] | str = "all",
    models: str | list[str] | None = None,
    peers: str | list[str] | None = None,
    *,
    out_dir: str | Path = "bench-results",
    json_path: str | Path | None = None,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    max_memory_gb: float = DEFAULT_MAX_MEMORY_GB,
    isolate: bool = True,
    tensorboard: bool = True,
    chart: bool = True,
    verbose: int = 1,
    command: str | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    columns: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Run the benchmark and write ``bench.json``, ``bench.md``, ``bench.png`` and a
    TensorBoard HParams run per row under ``out_dir``; returns the JSON document.
    ``columns``: a CSV ``data``'s user, item, rating, time columns (``tfrec.data.load_data``).
    A peer whose library (a bench extra) is missing is skipped, and a missing matplotlib
    means no chart; both are said before the jobs run and noted in the report."""
    from tfrec.bench import report

    named = protocols.split(",") if isinstance(protocols, str) else protocols
    protocols = list(PROTOCOLS) if protocols in ("all", None) else [p.strip().upper() for p in named]
    for protocol in protocols:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol '{protocol}'; protocols are R, T, S or all")
    names = resolve_models(models)
    peer_names = resolve_peers(peers, names)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs, notes = plan_jobs(data, protocols, names, peer_names, params)
    if not jobs:
        raise ValueError("nothing to run: no model or peer applies to the chosen protocols" + "".join(f"; {note}" for note in notes))
    for job in jobs if columns else []:
        job["columns"] = columns
    if chart and not report.chart_available():
        notes.append(report.NO_CHART_NOTE)
    for note in notes:  # the bench extras are checked before any job runs
        log(f"note: {note}", verbose)
    started = time.time()
    rows = run_jobs(jobs, isolate=isolate, max_seconds=max_seconds, max_memory_mb=max_memory_gb * 1024, verbose=verbose, out_dir=out_dir)
    document = {
        "kind": "bench",
        "data": data,
        "data_summary": next((r["data"] for r in rows if r.get("data")), None),
        "protocols": protocols,
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "seconds": time.time() - started,
        "command": command,
        "isolated": isolate,
        "machine": _machine(),
        "notes": notes + sorted({f"protocol {r['protocol']}: {r['split_note']}" for r in rows if r.get("split_note")}),
        "rows": rows,
    }
    report.write_all(document, out_dir, json_path=json_path, tensorboard=tensorboard, chart=chart)
    return document


def scale_entries(models: list[str], peers: list[str]) -> list[tuple[str, str]]:
    """(kind, entry) in run order: each model followed by its fit-time peer (when that
    peer is among ``peers`` and has not run yet at this size), then the other peers."""
    from tfrec.bench.peers import FIT_PEER

    order: list[tuple[str, str]] = []
    for entry in models:
        order.append(("tfrec", entry))
        peer = FIT_PEER.get(entry.split(":")[0])
        if peer in peers and ("peer", peer) not in order:
            order.append(("peer", peer))
    return order + [("peer", p) for p in peers if ("peer", p) not in order]


def _median_run(runs: list[dict]) -> dict:
    """One entry's row from its runs at one size: the ok run with the median fit (data
    rows: the median load; the lower middle run of an even count), else the last
    failure; with every run's seconds."""
    ok = [r for r in runs if r["status"] == "ok"]
    key = "load_s" if runs[0]["kind"] == "data" else "fit_s"
    ordered = sorted(ok, key=lambda r: r.get(key, math.inf))
    chosen = dict(ordered[(len(ordered) - 1) // 2] if ordered else runs[-1])
    if len(runs) > 1:
        chosen["runs"] = len(runs)
        chosen[f"{key}_runs"] = [r.get(key) for r in runs]
    return chosen


def pair_with_peers(rows: list[dict]) -> None:
    """Give each tfrec row of one size its fit-time peer's fit (``peers.FIT_PEER``) from
    the same size and run: ``peer``, ``peer_label``, ``peer_fit_s``, ``peer_fit_mb`` and
    ``fit_ratio`` = tfrec fit s / peer fit s."""
    from tfrec.bench.peers import FIT_PEER

    for row in rows:
        key = FIT_PEER.get(row["model"]) if row["kind"] == "tfrec" else None
        peer = next((r for r in rows if r["kind"] == "peer" and r["model"] == key), None)
        if peer is None:
            continue
        row["peer"], row["peer_label"] = key, peer["label"]
        if row["status"] == "ok" and peer["status"] == "ok" and peer.get("fit_s"):
            row["peer_fit_s"], row["peer_fit_mb"] = peer["fit_s"], peer.get("fit_mb")
            row["fit_ratio"] = row["fit_s"] / peer["fit_s"]


def run_scale(
    sizes: list[int],
    models: str | list[str] | None = None,
    peers: str | list[str] | None = "none",
    *,
    out_dir: str | Path = "bench-results/scale",
    json_path: str | Path | None = None,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    max_memory_gb: float = DEFAULT_MAX_MEMORY_GB,
    speed_users: int = 4096,
    repeat: int = 1,
    isolate: bool = True,
    verbose: int = 1,
    command: str | None = None,
    params: dict[str, dict[str, Any]] | None = None,
    holdout: bool = False,
) -> dict[str, Any]:
    """Fit + export every model (and peer) on synthetic data of each size (ascending),
    each in its own process; an entry that fails at one size is not tried at the larger
    ones. ``peers="paired"`` fits each model's fit-time peer next to it and gives the
    model's row the ratio of the fit times (see `pair_with_peers`); ``repeat`` runs every
    entry that many times per size, interleaved, keeping the median fit (`_median_run`).
    With no model and no peer, each size only generates the data (its time and memory).
    ``isolate=False`` runs every job in this process (quick checks: no time or memory
    limit, and memory figures are cumulative). Models take their protocol T preset
    (``tfrec.models.registry.params_for``: ``mf`` with implicit feedback), then ``params``. ``holdout=True``: fit on the temporal
    split's training part instead of all interactions and report ranking quality
    (NDCG@10, Recall@10) on a seeded sample of test users (`holdout_split`), so that
    speed is never bought with silent quality loss. Writes ``scale.json`` / ``scale.md``
    after every size."""
    from tfrec.bench import report
    from tfrec.models.registry import params_for

    if repeat < 1:
        raise ValueError(f"repeat must be at least 1, not {repeat}")
    names = resolve_models(models)
    peer_names, notes = available_peers(resolve_peers(peers, names) or [])
    if not report.chart_available():
        notes.append(report.NO_CHART_NOTE)
    for note in notes:  # the bench extras are checked before any job runs
        log(f"note: {note}", verbose)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    alive = scale_entries(names, peer_names) or [("data", "data")]
    rows, started = [], time.time()
    document: dict[str, Any] = {}
    for size in sorted(sizes):
        if not alive:
            break
        jobs = []
        for kind, entry in alive:
            name, variant = split_entry(entry) if kind == "tfrec" else (entry, {})
            overrides = {**(params or {}).get(name, {}), **variant}
            jobs.append({"kind": kind, "name": name, "entry": entry, "protocol": "T", "data": f"synthetic:{size}", "scale": True, "holdout": holdout,
                         "speed_users": speed_users, "serving_vs_numpy": False,
                         "params": params_for(name, "T", **overrides) if kind == "tfrec" else overrides})
        log(f"== size {size:,} interactions: {len(jobs)} entries" + (f", {repeat} runs each" if repeat > 1 else ""), verbose)
        runs: dict[tuple[str, str], list[dict]] = {}
        for round_ in range(repeat):
            todo = [job for job in jobs if all(r["status"] == "ok" for r in runs.get((job["kind"], job["entry"]), []))]
            if repeat > 1:
                log(f"-- run {round_ + 1} of {repeat}", verbose)
            for row in run_jobs(todo, isolate=isolate, max_seconds=max_seconds, max_memory_mb=max_memory_gb * 1024, verbose=verbose, out_dir=out_dir):
                runs.setdefault((row["kind"], row["entry"]), []).append(row)
        done = [_median_run(runs[(job["kind"], job["entry"])]) for job in jobs]
        for row in done:
            row["size"] = size
        pair_with_peers(done)
        rows += done
        alive = [(r["kind"], r["entry"]) for r in done if r["status"] == "ok"]
        document = {
            "kind": "scale",
            "sizes": sorted(sizes),
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "seconds": time.time() - started,
            "command": command,
            "max_seconds": max_seconds,
            "max_memory_gb": max_memory_gb,
            "repeat": repeat,
            "holdout": holdout,
            "isolated": isolate,
            "machine": _machine(),
            "notes": list(notes),
            "rows": rows,
        }
        report.write_scale(document, out_dir, json_path=json_path)  # after every size: partial results survive
    return document
