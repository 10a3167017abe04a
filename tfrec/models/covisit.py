"""Item-item co-visitation: "people who interacted with this next interacted with that"."""
from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from tfrec._keras import tf
from tfrec.distribute.collectives import Collectives
from tfrec.layers.covisitation import CoVisitationTable, count_pairs
from tfrec.models.base import Recommender, SimilarItems
from tfrec.models.fit_inputs import FitInputs
from tfrec.models.params import Param
from tfrec.models.specs import COVISIT_SOURCES, SPECS

SOURCES = COVISIT_SOURCES


class CoVisitation(SimilarItems, Recommender):
    """Co-visitation: score items by how often they occur near the user's latest items.

    Sessions: ``data.sessions`` ordered by (session_id, position) when ``source`` is
    "sessions", or "auto" and the data has sessions; otherwise ("interactions", or "auto"
    without sessions, e.g. MovieLens) each user's training interactions in time order,
    cut into a new session wherever two consecutive timestamps are more than
    ``session_gap`` apart (``None``, the default: one session per user, the whole
    sequence). Session items unknown to the training vocabulary keep their position but
    form no pair.

    Counts (``tfrec.layers.covisitation.count_pairs``): every pair of positions (p, q)
    in a session with 1 <= q - p < ``window``, different items, and
    |t_q - t_p| <= ``max_time_gap`` (when set) adds
    ``w = position_decay ** (q - p - 1) * 0.5 ** (|t_q - t_p| / time_half_life)`` to
    C[a_p, a_q] and, unless ``directed``, to C[a_q, a_p]; ``directed=True`` counts only
    "a_q came after a_p" (next-item). Only the ``neighbours`` heaviest neighbours of each
    item are kept (ties by lower item id), stored sparse as ``[n_items + 1, neighbours]``
    index and weight tables, never as an item-by-item matrix.

    Scores: h_0, h_1, ... are the user's items, most recent first: a known user's
    training items (time order, ``user_items``) followed by the ``history`` input (taken
    as more recent); an unknown user's ``history`` alone (``uses_history``; with no known
    history item, the base class's fallback: popularity share, count / total in [0, 1]). With the
    last ``history_length`` of them,

        score(c) = sum_{j < history_length} history_decay ** j * C[h_j, c]
                   + popularity_tiebreak * pop(c) / (max pop + 1)

    where pop is the number of training interactions with c. The second term only breaks
    ties (by popularity, then, in top-k, by lower item id, like PROTOCOLS.md's reference)
    while ``popularity_tiebreak`` is below the smallest step between two co-visitation
    scores: ``history_decay ** (history_length - 1)`` with integer counts (0.0625 with the
    defaults). ``similar_items(q)``: the stored neighbours of q with weight C[q, c] (other
    items: no score, returned as "" / -inf).

    Defaults: window 5, symmetric, whole-user sessions (the PROTOCOLS.md protocol S
    reference counts), top 100 neighbours, the last 5 items weighted 1, 1/2, 1/4, 1/8, 1/16.
    The protocol S reference row is reproduced exactly by ``history_length=3,
    history_decay=1, neighbours=2000`` (all neighbours kept; tested on ML-100K).
    """

    registry_name = "covisit"
    PARAMS: ClassVar[dict[str, Param]] = SPECS["covisit"].params

    @property
    def uses_history(self) -> bool:
        return True

    def __init__(
        self,
        window: int = 5,
        directed: bool = False,
        source: str = "auto",
        session_gap: float | None = None,
        max_time_gap: float | None = None,
        position_decay: float = 1.0,
        time_half_life: float | None = None,
        neighbours: int = 100,
        history_length: int = 5,
        history_decay: float = 0.5,
        popularity_tiebreak: float = 0.01,
        name: str | None = None,
    ):
        super().__init__(name=name)
        self.window = window
        self.directed = directed
        self.source = source
        self.session_gap = session_gap
        self.max_time_gap = max_time_gap
        self.position_decay = position_decay
        self.time_half_life = time_half_life
        self.neighbours = neighbours
        self.history_length = history_length
        self.history_decay = history_decay
        self.popularity_tiebreak = popularity_tiebreak
        self.table = CoVisitationTable(top_n=neighbours, name="covisitation")
        self.pair_count = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="pair_count")
        self.session_count = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="session_count")
        # the sessions read in prepare() (or the timeline's batches), counted in combine_state(); kept out of Keras tracking
        object.__setattr__(self, "_events", None)
        object.__setattr__(self, "_pairs", None)  # (row, col, weight, sessions) after combine_state

    # ---------------------------------------------------------------- fitting
    def uses_sessions(self, inputs: FitInputs) -> bool:
        """Count the sessions given to fit (else each user's timeline, cut by ``session_gap``)."""
        use_sessions = self.source == "sessions" or (self.source == "auto" and inputs.sessions is not None)
        if use_sessions and inputs.sessions is None:
            raise ValueError(f"covisit: source='sessions' but {inputs.name} has no sessions (pass sessions= to fit); use source='interactions' or 'auto'")
        return use_sessions

    def session_events(self, inputs: FitInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(item_idx int64[m], session int64[m], timestamp int64[m]) of the sessions given to
        fit, grouped by session, in order."""
        items, session, position, stamps = self._session_columns(inputs)
        later = (session[1:] > session[:-1]) | ((session[1:] == session[:-1]) & (position[1:] > position[:-1]))
        if not later.all():  # skip the sort when already ordered
            order = np.lexsort((position, session))
            items, session, stamps = items[order], session[order], stamps[order]
        new = np.ones(len(items), dtype=bool)
        new[1:] = session[1:] != session[:-1]
        return items, np.cumsum(new) - 1, stamps

    def timeline_events(self, users: np.ndarray, items: np.ndarray, stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The same, from interactions in (user, time) order: a session is a user's
        timeline, cut where two interactions are more than ``session_gap`` apart."""
        new = np.ones(len(users), dtype=bool)
        new[1:] = users[1:] != users[:-1]
        if self.session_gap is not None:
            new[1:] |= (stamps[1:] - stamps[:-1]) > self.session_gap
        return items, np.cumsum(new) - 1, stamps

    def _session_columns(self, inputs: FitInputs) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(item_idx, session_id, position, timestamp) of every session row, in the order
        given; ids unknown to the training vocabulary (or missing) become 0."""
        sessions = inputs.sessions
        if isinstance(sessions, pd.DataFrame):  # in memory: distinct ids looked up once
            codes, names = pd.factorize(sessions["item_id"].astype(str), sort=False)
            known = self.items.lookup(tf.constant(np.asarray(names, dtype=object).astype(str), tf.string)).numpy()
            items = np.append(known, 0).astype(np.int64)[codes]  # code -1 (missing id) -> 0
            columns = [items, *(sessions[key].to_numpy(np.int64) for key in ("session_id", "position", "timestamp"))]
        else:  # streamed batch by batch
            parts = [
                (self.items.lookup(batch["item_id"]).numpy(), batch["session_id"].numpy(), batch["position"].numpy(), batch["timestamp"].numpy())
                for batch in sessions
            ]
            columns = [np.concatenate(column) for column in zip(*parts)] if parts else [np.zeros(0, np.int64)]
        if len(columns[0]) == 0:
            raise ValueError(f"covisit: the sessions given to fit ({inputs.name}) are empty")
        return tuple(columns)

    def prepare(self, indexed: pd.DataFrame, inputs: FitInputs) -> None:
        """The sessions given to fit are read here; a timeline is collected by the adapt pass."""
        super().prepare(indexed, inputs)
        object.__setattr__(self, "_events", self.session_events(inputs) if self.uses_sessions(inputs) else [])

    def update_state(self, batch: dict[str, tf.Tensor]) -> None:
        super().update_state(batch)
        if isinstance(self._events, list):
            self._events.append((batch["user_idx"].numpy(), batch["item_idx"].numpy(), batch["timestamp"].numpy()))

    def combine_state(self, collectives) -> None:
        """Count the pairs of this worker's sessions (``count_pairs``), then add the
        workers' pair weights by pair (``Collectives.sum_by_key``: every worker receives
        all workers' pairs, 16 bytes each; the top-N cut comes after the sum, since the
        top N of partial counts is not the top N of their sum). A session is whole on one
        worker: a user's timeline (sharded by user) or a session id (sharded by session)."""
        super().combine_state(collectives)
        events = self._events
        if events is None:
            return
        if isinstance(events, list):
            users, items, stamps = ([np.concatenate(parts) for parts in zip(*events)] if events else [np.zeros(0, np.int64)] * 3)
            events = self.timeline_events(users, items, stamps)
        items, session, stamps = events
        object.__setattr__(self, "_events", None)
        row, col, weight = count_pairs(
            items, session, stamps, window=self.window, max_time_gap=self.max_time_gap, position_decay=self.position_decay,
            time_half_life=self.time_half_life, directed=self.directed, sort=False,
        )
        n_sessions = int(session[-1]) + 1 if len(session) else 0
        if collectives.distributed:
            n_slots = self.items.size
            pairs, weight = collectives.sum_by_key(row * n_slots + col, weight)
            row, col = pairs // n_slots, pairs % n_slots
            n_sessions = int(collectives.sum(np.array([n_sessions], np.int64))[0])
        object.__setattr__(self, "_pairs", (row, col, weight, n_sessions))

    def finalize_state(self) -> None:
        if self._events is not None:  # not combined (a caller of the adapt hooks without combine_state)
            self.combine_state(Collectives())  # one worker: every combine is the identity
        if self._pairs is not None:
            row, col, weight, n_sessions = self._pairs
            object.__setattr__(self, "_pairs", None)
            self.table.set_counts(row, col, weight, self.items.size)
            self.pair_count.assign(len(row))
            self.session_count.assign(n_sessions)
        super().finalize_state()

    # ---------------------------------------------------------------- scoring
    def _recent(self, user_idx: tf.Tensor, history_idx: tf.Tensor) -> tf.RaggedTensor:
        """Each query's items in time order: training items, then the given history."""
        history = tf.ragged.boolean_mask(history_idx, history_idx > 0)
        return tf.concat([self.user_items.rows(user_idx), history], axis=1)

    def score_candidates(self, user_idx: tf.Tensor, history_idx: tf.Tensor) -> tf.Tensor:
        items = self._recent(user_idx, history_idx)
        lengths = items.row_lengths()
        query = items.value_rowids()
        position = tf.range(tf.shape(query, out_type=tf.int64)[0]) - tf.gather(items.row_starts(), query)
        age = tf.gather(lengths, query) - 1 - position  # 0 = most recent
        recent = age < self.history_length
        age = tf.boolean_mask(age, recent)
        weights = tf.pow(tf.constant(float(self.history_decay), tf.float32), tf.cast(age, tf.float32))
        n_slots = tf.shape(self.items.ids)[0]
        batch = tf.shape(user_idx)[0]
        scores = self.table.scores(tf.boolean_mask(items.flat_values, recent), tf.boolean_mask(query, recent), weights, batch, n_slots)
        if self.popularity_tiebreak:
            counts = tf.cast(self.fallback.counts, tf.float32)
            prior = self.popularity_tiebreak * counts / (tf.reduce_max(counts) + 1.0)
            scores = scores + prior[tf.newaxis, :]
        return scores

    def similar_item_scores(self, item_idx: tf.Tensor) -> tf.Tensor:
        batch = tf.shape(item_idx)[0]
        n_slots = tf.shape(self.items.ids)[0]
        neighbours, weights = self.table(item_idx)
        index = tf.stack([tf.repeat(tf.range(batch, dtype=tf.int64), tf.shape(neighbours)[1]), tf.reshape(neighbours, [-1])], axis=1)
        keep = tf.reshape(neighbours, [-1]) > 0
        empty = tf.fill(tf.stack([batch, n_slots]), tf.constant(-np.inf, tf.float32))
        return tf.tensor_scatter_nd_update(empty, tf.boolean_mask(index, keep), tf.boolean_mask(tf.reshape(weights, [-1]), keep))

    # ----------------------------------------------------------- TensorBoard
    def write_summaries(self, top_n: int = 10) -> None:
        super().write_summaries(top_n)
        degree = self.table.degree.numpy()[1:]
        weights = self.table.weights_table.numpy()[1:]
        tf.summary.scalar("covisit/sessions", self.session_count, step=0)
        tf.summary.scalar("covisit/distinct_pairs", self.pair_count, step=0)
        tf.summary.scalar("covisit/items_with_neighbours", int((degree > 0).sum()), step=0)
        tf.summary.histogram("covisit/neighbours_per_item", degree, step=0)
        tf.summary.histogram("covisit/kept_weights", weights[weights > 0], step=0)
        tf.summary.histogram("covisit/top_neighbour_weight", weights[:, 0] if weights.shape[1] else weights, step=0)
        query = int(np.argmax(self.fallback.counts.numpy()[1:])) + 1
        ids = self.items.ids.numpy()
        titles = self.item_titles.numpy()
        neighbours = self.table.neighbours.numpy()[query]
        rows = [
            f"| {rank} | {ids[n].decode()} | {titles[n].decode()} | {w:g} |"
            for rank, (n, w) in enumerate(zip(neighbours[:top_n], self.table.weights_table.numpy()[query][:top_n]), start=1)
            if n > 0
        ]
        header = f"Co-visitation neighbours of {ids[query].decode()} ({titles[query].decode()}), the most popular item\n\n"
        tf.summary.text("covisit/neighbours_example", header + "| rank | item | title | weight |\n|---|---|---|---|\n" + "\n".join(rows), step=0)

