"""Popularity baseline: everyone gets the most interacted-with items they have not seen."""
from __future__ import annotations

from typing import ClassVar

from tfrec._keras import tf
from tfrec.layers.popularity import PopularityCounts
from tfrec.models.base import Recommender
from tfrec.models.params import Param
from tfrec.models.specs import SPECS


class Popularity(Recommender):
    """score(u, i) = count[i], the (optionally rating-weighted, time-decayed) number of
    training interactions with item i; see ``PopularityCounts`` for the formula.

    The counts are the base class's fallback popularity, configured by this model's
    parameters, so unknown users get exactly what known users get (minus seen items):
    scores are counts (weighted counts with the options below), for every user.

    Parameters:
        rating_weighted: weight each interaction by its rating instead of 1.
        time_half_life: if set, weight each interaction by 0.5 ** (age / time_half_life),
            age being the time from the interaction to the latest training timestamp
            (timestamp units: seconds for MovieLens, rows for data without time).
    """

    registry_name = "popularity"
    PARAMS: ClassVar[dict[str, Param]] = SPECS["popularity"].params

    def __init__(self, rating_weighted: bool = False, time_half_life: float | None = None, name: str | None = None):
        super().__init__(name=name)
        self.rating_weighted = rating_weighted
        self.time_half_life = time_half_life
        self.fallback = PopularityCounts(rating_weighted=rating_weighted, time_half_life=time_half_life, name="popularity")

    def fallback_scores(self, batch_size: tf.Tensor) -> tf.Tensor:
        """Unknown users get what known users get: the counts themselves (not the base class's shares)."""
        counts = tf.cast(self.fallback.counts, tf.float32)
        return tf.tile(counts[tf.newaxis, :], [batch_size, 1])

    def score_candidates(self, user_idx: tf.Tensor, history_idx: tf.Tensor) -> tf.Tensor:
        return self.fallback_scores(tf.shape(user_idx)[0])

    def score_pairs(self, user_idx: tf.Tensor, item_idx: tf.Tensor) -> tf.Tensor:
        return tf.cast(self.fallback(item_idx), tf.float32)
