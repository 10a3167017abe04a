"""The contract every tfrec model follows: fitting hooks and the serving functions.

A ``Recommender`` is a ``tf.keras.Model`` whose fitted state is non-trainable weights
(vocabularies, each user's training items, fallback popularity) plus whatever the
algorithm adds. Subclasses implement the scoring core; this class turns it into the
serving contract shared by every model:

- ``recommend(user_id string[B], history string[B, H], k int32[]) ->
  {item_ids string[B, k], scores float32[B, k]}``, best first. A known user's training
  items and every history item are excluded; the out-of-vocabulary slot never comes
  out. Ties break by lower item id. Slots with nothing left to recommend hold item id
  "" and score -inf. Unknown users with an empty history get the fallback: training
  popularity, scored as each item's share of the training interactions (count / total,
  in [0, 1]; ``popularity`` itself scores raw counts, its fallback being the model).
  Models with ``uses_history`` score unknown users from their history instead (a
  history of only unknown items counts as empty). ``ServedModel.explain`` says which
  rows got the fallback.
- ``score(user_id string[B], item_id string[B]) -> {score float32[B]}``: a predicted
  rating clipped to the training rating range for rating models (``predicts_ratings``;
  when the user or item is unknown, ``rating_fallback``: the training mean, or the
  model's baseline ``mu + b_u + b_i`` of the known side), otherwise the ranking score.
- ``similar_items(item_id string[B], k int32[]) -> {item_ids, scores}`` for models that
  also derive from ``SimilarItems``; the query item itself is never returned; unknown
  items get no results ("" / -inf).

Fitting is ``model.fit(dataset)`` (``Recommender.fit``): a vocabulary pass over the
``tf.data`` batches, ``prepare``, then the Keras ``adapt`` pattern as one Keras ``fit``
epoch: ``reset_state()``, ``update_state(batch)`` for each batch of the indexed training
interactions, ``finalize_state()``. Batches carry indices: ``user_idx`` int64[B],
``item_idx`` int64[B], ``rating`` float32[B], ``timestamp`` int64[B]. Trained models then
fit their Keras network (``train``). CONTRIBUTING.md walks through adding a model.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from tfrec._keras import keras, tf
from tfrec.data.dataset import Dataset
from tfrec.data.pipelines import DEFAULT_FIT_BATCH, indexed_batches, interaction_batches
from tfrec.distribute.collectives import Collectives
from tfrec.distribute.sharding import shard_batches, shard_frame
from tfrec.layers.interaction_log import InteractionLog, combine_interaction_logs
from tfrec.layers.interaction_table import UserItemTable, mask_ragged
from tfrec.layers.popularity import PopularityCounts
from tfrec.layers.vocabulary import IdVocabulary
from tfrec.models.fit_inputs import FitInputs, fit_inputs
from tfrec.models.params import Param, check_values
from tfrec.models.progress import progress_verbosity
from tfrec.models.tensorboard import tensorboard_run_dir

_RECOMMEND_SIGNATURE = (
    tf.TensorSpec([None], tf.string, name="user_id"),
    tf.TensorSpec([None, None], tf.string, name="history"),
    tf.TensorSpec([], tf.int32, name="k"),
)
_SCORE_SIGNATURE = (
    tf.TensorSpec([None], tf.string, name="user_id"),
    tf.TensorSpec([None], tf.string, name="item_id"),
)
#: The count arguments of ``Recommender.fit``, checked by the parameters' own rules.
_FIT_ARGUMENTS = {
    "batch_size": Param(int, minimum=1, optional="262144 rows per adapt step"),
    "epochs": Param(int, minimum=1, optional="the model's epochs"),
}
_SIMILAR_SIGNATURE = (
    tf.TensorSpec([None], tf.string, name="item_id"),
    tf.TensorSpec([], tf.int32, name="k"),
)
_TOP_K_OUTPUTS = {"item_ids": tf.string, "scores": tf.float32}


def _assert(condition: tf.Tensor, message: str, *values: tf.Tensor):
    """An assert op that fails with ``message`` (and ``values``) naming the input; None when
    eager (it has raised already)."""
    return tf.debugging.Assert(condition, [message, *values], name="check")


def _after(checks: list, *tensors: tf.Tensor) -> list[tf.Tensor]:
    """``tensors``, made to wait for ``checks``, so that nothing computed from them runs
    (and fails less readably) before the checks pass."""
    with tf.control_dependencies([check for check in checks if check is not None]):
        return [tf.identity(tensor) for tensor in tensors]


class NotFittedError(RuntimeError):
    """The model was used before ``model.fit``."""


class Recommender(keras.Model):
    """Base class of every tfrec model (see the module docstring for the contract)."""

    registry_name: ClassVar[str] = ""
    #: The name of the data the model was last fitted on ("tf.data" for a plain ``tf.data.Dataset``; None before fit).
    fit_data_name: str | None = None
    #: The rule of every constructor keyword argument, in signature order (``tfrec.models.params``).
    PARAMS: ClassVar[dict[str, Param]] = {}
    #: The serving signatures compute at most this many rows (users, pairs, query items) at
    #: a time: a larger batch is served in chunks, one after another, so that a call's memory
    #: is that of one chunk however many rows it has.
    SERVING_CHUNK: ClassVar[int] = 1024
    #: ... and ``recommend`` at most this many history entries (rows x H) per chunk, at least
    #: one row: ``mf``'s fold-in of a chunk holds ``entries x factors`` floats (64 MB at 64 factors).
    SERVING_CHUNK_ENTRIES: ClassVar[int] = 262_144

    def __init__(self, name: str | None = None):
        _refuse_strategy_scope(f"build {self.registry_name or type(self).__name__}")
        super().__init__(name=name or self.registry_name or None)
        self.users = IdVocabulary(name="users")
        self.items = IdVocabulary(name="items")
        self.user_items = UserItemTable(name="user_items")
        self.fallback = PopularityCounts(name="fallback_popularity")
        self.item_titles = tf.Variable([""], shape=tf.TensorShape([None]), dtype=tf.string, trainable=False, name="item_titles")
        self.rating_range = tf.Variable([0.0, 0.0, 0.0], trainable=False, name="rating_min_mean_max")
        self.is_fitted = tf.Variable(False, trainable=False, name="is_fitted")

    # ------------------------------------------------------------ capabilities
    # Read on instances (a subclass overrides the property; mf's depends on its feedback).
    @property
    def trained(self) -> bool:
        """Weights learned by Keras ``fit`` after the adapt pass (``train``)."""
        return False

    @property
    def uses_history(self) -> bool:
        """Unknown users are scored from their ``history`` (else they get the fallback)."""
        return False

    @property
    def predicts_ratings(self) -> bool:
        """``score`` returns a predicted rating (clipped to the training range)."""
        return False

    @property
    def data_parallel_training(self) -> bool:
        """Every worker of a distributed fit trains (synchronous data parallelism); False:
        the chief computes the weights from the combined state alone."""
        return False

    # ----------------------------------------------------------------- config
    @classmethod
    def hyperparameters(cls) -> dict[str, inspect.Parameter]:
        """The constructor's keyword arguments (without ``name``), in order."""
        params = inspect.signature(cls.__init__).parameters
        return {k: p for k, p in params.items() if k not in ("self", "name", "args", "kwargs")}

    def get_config(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.hyperparameters()}

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects=None) -> Recommender:
        return cls(**config)

    # ---------------------------------------------------------------- fitting
    def prepare(self, indexed: pd.DataFrame, inputs: FitInputs) -> None:
        """After the vocabulary pass: each user's training items (time order), titles,
        rating range. Subclasses extend it with what they read besides the interactions
        (the catalog, sessions) and call ``super().prepare`` first.

        ``indexed``: the interactions with ``user_idx`` / ``item_idx`` columns (1-based),
        sorted by (user, timestamp, item) (``InteractionLog``).
        """
        self.user_items.set_rows(indexed["user_idx"].to_numpy(), indexed["item_idx"].to_numpy(), self.users.size)
        item_ids = self.items.ids.numpy()[1:].astype(object)
        item_ids = np.array([i.decode("utf-8") for i in item_ids], dtype=object)
        titles = inputs.items.drop_duplicates("item_id").set_index("item_id")["title"]
        titles.index = titles.index.astype(str)
        aligned = titles.reindex(item_ids).fillna(pd.Series(item_ids, index=item_ids)).astype(str)
        self.item_titles.assign(np.concatenate([[""], aligned.to_numpy(dtype=object)]).astype(object))
        ratings = indexed["rating"].to_numpy(np.float64)
        self.rating_range.assign([ratings.min(), ratings.mean(), ratings.max()])

    def reset_state(self) -> None:
        self.fallback.reset_state(self.items.size)

    def update_state(self, batch: dict[str, tf.Tensor]) -> None:
        self.fallback.update_state(batch["item_idx"], batch["rating"], batch["timestamp"])

    def combine_state(self, collectives: Collectives) -> None:
        """Between the adapt pass and ``finalize_state``: add this worker's partial state
        to the other workers' (``tfrec.distribute.collectives``); one worker: nothing to
        do. Subclasses with state of their own extend it and call ``super().combine_state``."""
        self.fallback.combine_state(collectives)

    def finalize_state(self) -> None:
        self.fallback.finalize_state()
        self.is_fitted.assign(True)
        # Keras needs the call's input signature to save the model. Recording it without a
        # call saves an eager pass through the whole recommend path (about 0.5 s).
        first_user = self.users.ids[1:2]
        self._set_save_spec({"user_id": first_user, "history": tf.zeros([1, 0], tf.string), "k": tf.constant(1, tf.int32)})

    def train(self, indexed: pd.DataFrame, inputs: FitInputs, *, callbacks: list, verbose: int, epochs: int | None, checkpoint_dir, strategy=None) -> dict:
        """Learn trainable weights with Keras ``fit`` (trained models only)."""
        raise NotImplementedError(f"{self.registry_name} is not a trained model")

    def check_params(self) -> None:
        """ValueError for a bad hyperparameter: ``"<model>: <param> must be <rule>, got <value!r>"``.

        Every value is checked against its ``PARAMS`` spec, then
        ``check_param_combinations`` runs. Called first by ``fit`` and by ``make_model``.
        """
        check_values(self.registry_name, self.PARAMS, {key: _unwrapped(getattr(self, key)) for key in self.PARAMS})
        self.check_param_combinations()

    def check_param_combinations(self) -> None:
        """Rules between parameters (each value already passed its own rule); override.

        Raise ``ValueError`` in the same format, naming the parameter to change.
        """

    def write_summaries(self, top_n: int = 10) -> None:
        """Log what fitting computed to the default TensorBoard writer (step 0)."""
        counts = self.fallback.counts[1:]
        tf.summary.histogram("popularity/interactions_per_item", counts, step=0)
        top = tf.math.top_k(counts, k=tf.minimum(top_n, tf.shape(counts)[0]))
        rows = [
            f"| {rank} | {item.decode()} | {title.decode()} | {count:g} |"
            for rank, (item, title, count) in enumerate(
                zip(self.items.ids_of(top.indices + 1).numpy(), tf.gather(self.item_titles, top.indices + 1).numpy(), top.values.numpy()),
                start=1,
            )
        ]
        table = "| rank | item | title | count |\n|---|---|---|---|\n" + "\n".join(rows)
        tf.summary.text("popularity/top_items", table, step=0)

    # ------------------------------------------------------------- Keras fit
    def fit(
        self,
        x: tf.data.Dataset | Dataset | None = None,
        y: Any = None,
        *,
        catalog: pd.DataFrame | None = None,
        sessions: pd.DataFrame | tf.data.Dataset | None = None,
        epochs: int | None = None,
        callbacks: list | None = None,
        verbose: int | str = "auto",
        batch_size: int | None = None,
        checkpoint_dir: str | None = None,
        strategy: tf.distribute.Strategy | None = None,
        **kwargs: Any,
    ) -> keras.callbacks.History:
        """Fit on a ``tf.data.Dataset`` of interactions, the one fitting path of every model.

        ``x``: batches (or rows) of dicts with string ``user_id``, ``item_id`` and
        optional ``rating``, ``timestamp`` (what ``tfrec.data.interactions_dataset`` and
        ``tf.data.experimental.make_csv_dataset`` yield; checked up front by
        ``tfrec.data.pipelines.interaction_batches``), or a ``tfrec.data.Dataset``
        (its catalogue and sessions are then used unless given). ``catalog``: the item
        catalogue (titles, text, categories; ``tfidf`` needs it, ``two_tower`` and the
        TensorBoard tables use it), ``sessions``: for ``covisit`` (see ``FitInputs``).
        ``batch_size``: rows per step of the adapt pass (default 262144; fixed-weight
        models only: a trained model's training batch is its ``batch_size`` parameter).
        ``verbose``: 0 (silent), 1 or ``"auto"`` (live progress bars on a terminal, one line
        per pass or epoch when standard output is a file or pipe), 2 (one line per pass).
        ``strategy``: a ``tf.distribute.Strategy`` (build the model and call ``fit`` outside
        its ``scope()``: the model's string state cannot be mirrored). Under ``MultiWorkerMirroredStrategy`` every worker calls
        ``fit`` on the same data and keeps its shard (``tfrec.distribute.sharding``: rows by
        a stable hash of the user id); the vocabularies and the interaction table are
        gathered, each worker counts its shard in the adapt pass and ``combine_state``
        adds the partial state across workers, so the chief (worker 0) ends with the
        weights of a one-process fit; other workers of a fixed-weight model stop there
        (their model is not fitted and exports nothing). Trained models train data-parallel
        (``TrainedRecommender.train``).

        Steps:

        1. ``check_params()``, then the vocabulary pass over ``x`` (``InteractionLog``):
           user and item vocabularies and the interactions as integer indices, sorted
           by (user, time);
        2. ``prepare``: each user's training items, titles, and the model's own inputs;
        3. the adapt pass, a Keras ``fit`` epoch over the indexed interactions (this
           worker's shard) whose ``train_step`` is ``update_state(batch)``: ``reset_state()``
           at the start, ``combine_state(collectives)`` then ``finalize_state()`` at the end of the epoch (before the other callbacks'
           ``on_epoch_end``, so they see the fitted model). Fixed-weight models count
           here, and ``callbacks`` (TensorBoard, ModelCheckpoint, ...) see this pass;
        4. trained models then run ``train``: Keras ``fit`` epochs of their network,
           ``epochs`` (default: the model's ``epochs``) at most, with ``callbacks``,
           early stopping on a held-out slice and, with ``checkpoint_dir``, resumable
           checkpoints.

        A ``keras.callbacks.TensorBoard`` among ``callbacks`` also gets what the model
        computed (``write_summaries``). Returns the Keras ``History`` of the pass that
        produced the weights. Fitting twice on the same data gives the same weights.
        """
        unsupported = sorted(k for k, v in kwargs.items() if v is not None and v is not False)
        if y is not None:
            unsupported.insert(0, "y")
        if unsupported:
            raise TypeError(
                f"{self.registry_name}.fit takes a dataset of interactions and catalog=, sessions=, epochs=, callbacks=, "
                f"verbose=, batch_size=, checkpoint_dir=; it has no use for {', '.join(unsupported)} (ratings and timestamps are dataset columns; "
                "batch size and validation are model parameters)"
            )
        self.check_params()
        check_values(f"{self.registry_name}.fit", _FIT_ARGUMENTS, {"batch_size": batch_size, "epochs": epochs})
        if self.trained:
            if batch_size is not None:
                raise ValueError(
                    f"{self.registry_name}.fit: the training batch size is the model's parameter "
                    f"(make_model({self.registry_name!r}, batch_size={batch_size})), not an argument of fit"
                )
        else:
            if epochs not in (None, 1):
                raise ValueError(f"{self.registry_name} computes its weights in one pass over the data; epochs must be 1 (or unset), got {epochs!r}")
            if checkpoint_dir is not None:
                raise ValueError(f"{self.registry_name} is a fixed-weight model: it has no training epochs to checkpoint (checkpoint_dir)")
        verbose = progress_verbosity(verbose)
        callbacks = list(callbacks or [])
        in_memory = isinstance(x, Dataset)
        if in_memory:
            catalog = x.items if catalog is None else catalog
            sessions = x.sessions if sessions is None else sessions
        name = x.name if in_memory else "tf.data"
        batches = None if in_memory else interaction_batches(x)
        inputs = fit_inputs(catalog, sessions, name)
        _refuse_strategy_scope(f"{self.registry_name}.fit")
        collectives = Collectives(strategy)
        place = collectives.place
        frame, batches, inputs = _worker_share(x.interactions if in_memory else None, batches, inputs, place)
        self.fit_data_name = name

        log = InteractionLog(name)
        if verbose:
            print(f"{self.registry_name}: vocabulary pass over {name}")
        if in_memory:
            log.update_frame(frame)  # already in memory: one pandas pass, no strings through tf.data
        else:
            n_batches = int(batches.cardinality())
            live = verbose == 1 or (verbose == 2 and n_batches >= 0)  # verbose 2 prints its one line only for a known length
            progress = keras.utils.Progbar(n_batches if n_batches >= 0 else None, verbose=verbose if live else 0, unit_name="batch")
            step = 0
            for step, batch in enumerate(batches, start=1):
                log.update_state(batch)
                progress.update(step)
            if verbose and n_batches < 0:
                print("" if live else f"{step:,} batches")  # a live bar of unknown length does not end its line
        user_ids, item_ids, indexed = log.finalize_state(allow_empty=collectives.distributed)
        shard = indexed
        if collectives.distributed:
            user_ids, item_ids, shard, indexed = combine_interaction_logs(user_ids, item_ids, indexed, collectives, name)
        self.users.set_ids(user_ids)
        self.items.set_ids(item_ids)
        self.prepare(indexed, inputs)

        if verbose:
            counted = f"{len(shard):,} of {len(indexed):,} (worker {place.index} of {place.count})" if collectives.distributed else f"{len(indexed):,}"
            print(f"{self.registry_name}: adapt pass, counting {counted} interactions ({len(user_ids):,} users, {len(item_ids):,} items)")
        history = self._adapt(shard, [] if self.trained else callbacks, verbose, batch_size or DEFAULT_FIT_BATCH, collectives)
        if verbose and collectives.distributed:
            print(f"{self.registry_name}: combined with the other workers' shards: {collectives.bytes_received / 2**20:,.1f} MiB received "
                  f"in {collectives.seconds:.2f} s of collectives")
        if self.trained and (place.is_chief or self.data_parallel_training):
            history = _as_history(self.train(
                indexed, inputs, callbacks=callbacks, verbose=verbose, epochs=epochs, checkpoint_dir=checkpoint_dir,
                strategy=strategy if self.data_parallel_training else None,
            ))
        if not self.is_fitted.numpy():
            return history  # another worker's share of a distributed fit: nothing to summarize
        run_dir = tensorboard_run_dir(callbacks)
        if run_dir is not None:
            with tf.summary.create_file_writer(str(run_dir)).as_default():
                self.write_summaries()
        return history

    def _adapt(self, indexed: pd.DataFrame, callbacks: list, verbose: int, batch_size: int, collectives: Collectives) -> keras.callbacks.History:
        """Step 3 of ``fit``: one Keras ``fit`` epoch whose train step is ``update_state``.

        Run eagerly: models may accumulate numpy state per batch (kNN, co-visitation).
        A worker with an empty shard still takes part in ``combine_state``.
        """
        adapt_pass = _AdaptPass(collectives)
        if len(indexed) == 0:
            adapt_pass.set_model(self)
            adapt_pass.on_train_begin()
            adapt_pass.on_epoch_end(0)
            return _as_history({})
        keras.Model.compile(self, run_eagerly=True)
        try:
            return keras.Model.fit(
                self, indexed_batches(indexed, batch_size), epochs=1, callbacks=[adapt_pass, *callbacks], verbose=verbose
            )
        finally:
            self.optimizer = None  # nothing is learned by gradient: keep no optimizer state in the model

    def train_step(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """The adapt pass's step: accumulate the batch (``update_state``)."""
        self.update_state(batch)
        return {}

    # --------------------------------------------------- scoring core (override)
    def score_candidates(self, user_idx: tf.Tensor, history_idx: tf.Tensor) -> tf.Tensor:
        """Scores of every item for each query: float32[B, n_items + 1] (column 0 ignored).

        ``user_idx`` int64[B] (0 = unknown user), ``history_idx`` int64[B, H] (0 = padding
        or unknown item). Must be implemented by subclasses.
        """
        raise NotImplementedError

    def score_pairs(self, user_idx: tf.Tensor, item_idx: tf.Tensor) -> tf.Tensor:
        """Score of one item per query: float32[B]. Default: gathered from the full scores."""
        empty_history = tf.zeros([tf.shape(user_idx)[0], 0], tf.int64)
        scores = self.score_candidates(user_idx, empty_history)
        return tf.gather(scores, item_idx, batch_dims=1)

    def similar_item_scores(self, item_idx: tf.Tensor) -> tf.Tensor:
        """Similarity of every item to each query item: float32[B, n_items + 1]."""
        raise NotImplementedError(f"{self.registry_name} has no similar_items")

    def rating_fallback(self, user_idx: tf.Tensor, item_idx: tf.Tensor) -> tf.Tensor:
        """Predicted rating float32[B] for pairs whose user or item is unknown (index 0).

        Default: the training mean rating. Models with rating biases override it with the
        baseline ``mu + b_u + b_i`` of whichever of the two is known (Surprise's rule).
        """
        return tf.fill(tf.shape(user_idx), self.rating_range[1])

    def fallback_scores(self, batch_size: tf.Tensor) -> tf.Tensor:
        """What an unknown user with no known history item gets: float32[B, n_items + 1],
        each item's share of the training interactions, count[i] / sum(count), in [0, 1]
        (the counts of ``fallback``; the ranking is that of the counts). ``popularity``
        overrides it: its fallback is the model itself, raw counts."""
        counts = self.fallback.counts
        share = tf.cast(counts / tf.maximum(tf.reduce_sum(counts), 1e-300), tf.float32)
        return tf.tile(share[tf.newaxis, :], [batch_size, 1])

    # ------------------------------------------------------- serving functions
    @tf.function(input_signature=_RECOMMEND_SIGNATURE, autograph=False)
    def serve_recommend(self, user_id: tf.Tensor, history: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        """The ``recommend`` signature (see the module docstring). Its checks (fitted model,
        non-empty user ids, one history row per user, 1 <= k <= n_items) run before anything
        else and fail with ``InvalidArgumentError`` naming the input. Work per call is
        bounded: rows are computed in chunks of ``SERVING_CHUNK`` (1,024) users and at most
        ``SERVING_CHUNK_ENTRIES`` (262,144) history entries (rows x H, at least one row), one
        chunk after another, so memory is that of one chunk whatever the batch size (the
        history width itself is not capped: one user's row is O(H)); a batch within one chunk
        is one computation, as before chunking."""
        checks = [
            *self._check_ids(user_id, "user_id"),
            _assert(tf.equal(tf.shape(history)[0], tf.shape(user_id)[0]), "history must have one row per user_id (its first dimension is the batch)",
                    tf.shape(history)[0], tf.shape(user_id)[0]),
            *self._check_k(k),
        ]
        user_id, history, k = _after(checks, user_id, history, k)
        chunk = tf.clip_by_value(int(self.SERVING_CHUNK_ENTRIES) // tf.maximum(tf.shape(history)[1], 1), 1, int(self.SERVING_CHUNK))
        return self._in_chunks(lambda user_id, history: self._recommend_rows(user_id, history, k), (user_id, history), _TOP_K_OUTPUTS, chunk)

    def _recommend_rows(self, user_id: tf.Tensor, history: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        """``recommend`` of one chunk of rows (inputs already checked)."""
        user_idx = self.users.lookup(user_id)
        history_idx = self.items.lookup(history)
        batch = tf.shape(user_idx)[0]
        known = user_idx > 0
        has_history = tf.reduce_any(history_idx > 0, axis=1)
        use_model = tf.logical_or(known, has_history) if self.uses_history else known
        model_scores = self.score_candidates(user_idx, history_idx)
        scores = tf.cond(  # the [B, n_items + 1] fallback only when some row needs it
            tf.reduce_all(use_model),
            lambda: model_scores,
            lambda: tf.where(use_model[:, tf.newaxis], model_scores, self.fallback_scores(batch)),
        )
        # one scatter of -inf: training items, the given history, and column 0 (OOV/padding)
        oov_column = tf.zeros([batch, 1], tf.int64)
        excluded = tf.concat([self.user_items.rows(user_idx), tf.RaggedTensor.from_tensor(tf.concat([history_idx, oov_column], 1))], axis=1)
        return self._top_k(mask_ragged(scores, excluded), k)

    @tf.function(input_signature=_SCORE_SIGNATURE, autograph=False)
    def serve_score(self, user_id: tf.Tensor, item_id: tf.Tensor) -> dict[str, tf.Tensor]:
        """The ``score`` signature; checks first (as ``serve_recommend``), ``SERVING_CHUNK`` pairs at a time."""
        checks = [
            *self._check_ids(user_id, "user_id"),
            *self._check_ids(item_id, "item_id"),
            _assert(tf.equal(tf.shape(user_id)[0], tf.shape(item_id)[0]), "user_id and item_id must have the same length",
                    tf.shape(user_id)[0], tf.shape(item_id)[0]),
        ]
        user_id, item_id = _after(checks, user_id, item_id)
        return self._in_chunks(self._score_rows, (user_id, item_id), {"score": tf.float32})

    def _score_rows(self, user_id: tf.Tensor, item_id: tf.Tensor) -> dict[str, tf.Tensor]:
        """``score`` of one chunk of pairs (inputs already checked)."""
        user_idx = self.users.lookup(user_id)
        item_idx = self.items.lookup(item_id)
        scores = self.score_pairs(user_idx, item_idx)
        if self.predicts_ratings:
            known = tf.logical_and(user_idx > 0, item_idx > 0)
            scores = tf.where(known, scores, self.rating_fallback(user_idx, item_idx))
            scores = tf.clip_by_value(scores, self.rating_range[0], self.rating_range[2])
        else:
            scores = tf.where(item_idx > 0, scores, tf.zeros_like(scores))
        return {"score": scores}

    def _similar_items(self, item_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        """``similar_items``; checks first (as ``serve_recommend``), ``SERVING_CHUNK`` query items at a time."""
        item_id, k = _after([*self._check_ids(item_id, "item_id"), *self._check_k(k)], item_id, k)
        return self._in_chunks(lambda item_id: self._similar_rows(item_id, k), (item_id,), _TOP_K_OUTPUTS)

    def _similar_rows(self, item_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        item_idx = self.items.lookup(item_id)
        scores = self.similar_item_scores(item_idx)
        scores = mask_ragged(scores, tf.RaggedTensor.from_tensor(tf.stack([item_idx, tf.zeros_like(item_idx)], axis=1)))  # itself, OOV
        unknown = item_idx == 0
        scores = tf.where(unknown[:, tf.newaxis], tf.constant(-np.inf, scores.dtype), scores)
        return self._top_k(scores, k)

    def serving_functions(self) -> dict[str, Any]:
        """Signature name -> tf.function, as exported (and as evaluation calls them)."""
        functions = {"recommend": self.serve_recommend, "score": self.serve_score}
        if isinstance(self, SimilarItems):
            functions["similar_items"] = self.serve_similar_items
        return functions

    def call(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Keras entry point: ``recommend`` on {"user_id", "history", "k"}."""
        return self.serve_recommend(inputs["user_id"], inputs["history"], inputs["k"])

    # ----------------------------------------------------------------- helpers
    def _check_ids(self, ids: tf.Tensor, what: str) -> list:
        """The checks (assert ops; none when eager, where they raise at once) of an id input."""
        return [
            _assert(tf.equal(self.is_fitted, True), "the model is not fitted; call model.fit(dataset) first"),
            _assert(tf.reduce_all(tf.strings.length(ids) > 0), f"{what} must be non-empty strings"),
        ]

    def _check_k(self, k: tf.Tensor) -> list:
        n_items = tf.shape(self.items.ids)[0] - 1
        return [
            _assert(k > 0, "k must be at least 1, got", k),
            _assert(k <= n_items, "k is larger than the number of items in the catalog:", k, n_items),
        ]

    def _in_chunks(self, compute, rows: tuple[tf.Tensor, ...], outputs: dict[str, tf.DType], chunk: tf.Tensor | int | None = None) -> dict[str, tf.Tensor]:
        """``compute(*rows)`` (a dict of tensors whose first axis is the rows') on at most
        ``chunk`` (default ``SERVING_CHUNK``) rows at a time: a batch of up to one chunk is one
        call; a larger one runs the chunks one after another (``tf.while_loop``, no parallel
        iterations) and concatenates their results, so memory is bounded by one chunk."""
        batch = tf.shape(rows[0])[0]
        chunk = tf.convert_to_tensor(int(self.SERVING_CHUNK) if chunk is None else chunk, tf.int32)
        if not tf.executing_eagerly():
            compute = tf.function(compute, autograph=False)  # in a graph: traced once, called by both branches

        def chunked() -> dict[str, tf.Tensor]:
            n_chunks = (batch + chunk - 1) // chunk
            arrays = {key: tf.TensorArray(dtype, size=n_chunks, infer_shape=False) for key, dtype in outputs.items()}

            def step(i, arrays):
                out = compute(*(tensor[i * chunk : (i + 1) * chunk] for tensor in rows))
                return i + 1, {key: array.write(i, out[key]) for key, array in arrays.items()}

            _, arrays = tf.while_loop(lambda i, _: i < n_chunks, step, (tf.constant(0), arrays), parallel_iterations=1)
            return {key: array.concat() for key, array in arrays.items()}

        return tf.cond(batch <= chunk, lambda: compute(*rows), chunked)

    def _top_k(self, scores: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        """Best ``k`` of ``scores`` [B, n_items + 1], whose column 0 (OOV) the caller set to -inf;
        -inf entries come back as "" with score -inf."""
        top = tf.math.top_k(tf.cast(scores, tf.float32), k=k, sorted=True)
        empty = tf.math.is_inf(top.values)
        item_ids = tf.where(empty, tf.constant(""), self.items.ids_of(top.indices))
        return {"item_ids": item_ids, "scores": top.values}



class SimilarItems:
    """Mixin for models with an item-to-item similarity: adds the ``similar_items`` signature.

    The model implements ``similar_item_scores(item_idx[B]) -> float32[B, n_items + 1]``.
    """

    @tf.function(input_signature=_SIMILAR_SIGNATURE, autograph=False)
    def serve_similar_items(self, item_id: tf.Tensor, k: tf.Tensor) -> dict[str, tf.Tensor]:
        return self._similar_items(item_id, k)


class _AdaptPass(keras.callbacks.Callback):
    """Resets the model's fitting state before the adapt epoch, combines the workers'
    partial states and finalizes it right after (first in the callback list, so the other
    callbacks' ``on_epoch_end`` see the weights); the epoch's logs get ``interactions``,
    the number of rows counted. In a distributed fit, workers other than the chief do not
    finalize a fixed-weight model (or a model the chief trains alone): nothing of theirs is exported."""

    def __init__(self, collectives: Collectives):
        super().__init__()
        self.collectives = collectives

    def on_train_begin(self, logs=None) -> None:
        self.model.reset_state()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        self.model.combine_state(self.collectives)
        if not (self.collectives.place.is_chief or self.model.data_parallel_training):
            return
        self.model.finalize_state()
        if logs is not None:
            logs["interactions"] = float(tf.size(self.model.user_items.item_indices))


def _worker_share(frame: pd.DataFrame | None, batches: tf.data.Dataset | None, inputs: FitInputs, place) -> tuple:
    """(frame, batches, inputs) with only this worker's rows: its users' interactions and
    its session ids' sessions (``tfrec.distribute.sharding``); all of them with one worker."""
    if place.count == 1:
        return frame, batches, inputs
    frame = None if frame is None else shard_frame(frame, place, "user_id")
    batches = None if batches is None else shard_batches(batches, place, "user_id")
    if isinstance(inputs.sessions, pd.DataFrame):
        inputs = dataclasses.replace(inputs, sessions=shard_frame(inputs.sessions, place, "session_id"))
    elif inputs.sessions is not None:
        inputs = dataclasses.replace(inputs, sessions=shard_batches(inputs.sessions, place, "session_id"))
    return frame, batches, inputs


def _refuse_strategy_scope(what: str) -> None:
    """ValueError inside a ``tf.distribute`` strategy's ``scope()``: a tfrec model's state
    (vocabularies, titles) is string variables, which a multi-worker strategy cannot
    mirror (TensorFlow's collectives take no strings: ``CollectiveBcastSend`` refuses
    them), so the model lives outside the scope, ``fit`` takes the strategy as an argument
    and builds the trained network in its scope, and the chief exports plain variables."""
    if tf.distribute.has_strategy():
        raise ValueError(
            f"{what} outside strategy.scope(): tfrec models take the strategy as an argument, "
            "model = make_model(name); model.fit(data, strategy=strategy) (fit builds the trained network in the strategy's scope)"
        )


def _unwrapped(value: Any) -> Any:
    """A hyperparameter as given: Keras wraps lists and dicts set on a model for tracking."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def _as_history(values: dict[str, list[float]]) -> keras.callbacks.History:
    """A Keras ``History`` holding ``values`` (per-epoch logs of a trained model's fit)."""
    history = keras.callbacks.History()
    history.history = values
    history.epoch = list(range(max((len(v) for v in values.values()), default=0)))
    return history
