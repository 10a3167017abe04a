"""Checks a model must pass before an export becomes a visible version.

``check_weights``: every floating-point weight is finite. ``check_saved_model``: the
staged SavedModel loads, has the model's signatures, and each answers a probe request
(a few known users / items, ``k=1``) with a valid output: ``score`` finite, ``recommend``
and ``similar_items`` scores finite or -inf (an empty slot, whose item id is ""). Both
raise ``ValueError`` with a one-line reason.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tfrec._keras import tf
from tfrec.models.base import Recommender

#: How many known users / items a probe request asks about.
PROBE_SIZE = 8


def check_weights(model: Recommender) -> None:
    """Raise ``ValueError`` naming the first floating-point weight with a NaN or infinity."""
    for weight in model.weights:
        if weight.dtype.is_floating and not bool(tf.reduce_all(tf.math.is_finite(weight))):
            raise ValueError(f"weight {weight.name} holds NaN or infinite values")


def _probe_ids(vocabulary_ids: tf.Variable) -> np.ndarray:
    """Up to ``PROBE_SIZE`` known ids spread over the vocabulary (slot 0, the out-of-vocabulary "", excluded)."""
    n = int(tf.shape(vocabulary_ids)[0]) - 1
    return tf.gather(vocabulary_ids, np.unique(np.linspace(1, n, min(PROBE_SIZE, n)).astype(np.int64))).numpy()


def _check_ranked(name: str, out: dict) -> None:
    scores, item_ids = out["scores"].numpy(), out["item_ids"].numpy()
    if np.isnan(scores).any() or np.isposinf(scores).any():
        raise ValueError(f"signature {name} answered a probe request with NaN or +inf scores")
    if (item_ids[np.isneginf(scores)] != b"").any() or (item_ids[np.isfinite(scores)] == b"").any():
        raise ValueError(f"signature {name} answered a probe request with item ids that do not match its scores")


def check_saved_model(folder: str | Path, model: Recommender) -> None:
    """Load the SavedModel in ``folder`` once and call each of ``model``'s signatures once."""
    try:
        loaded = tf.saved_model.load(str(folder))
    except Exception as error:  # any load failure means the folder is unusable
        raise ValueError(f"the SavedModel does not load ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from None
    expected = set(model.serving_functions())
    missing = expected - set(loaded.signatures)
    if missing:
        raise ValueError(f"the SavedModel lacks signatures {sorted(missing)}")
    users, items = _probe_ids(model.users.ids), _probe_ids(model.items.ids)
    k = tf.constant(1, tf.int32)
    try:
        out = loaded.signatures["recommend"](user_id=tf.constant(users), history=tf.fill([len(users), 1], ""), k=k)
        _check_ranked("recommend", out)
        pairs = min(len(users), len(items))
        score = loaded.signatures["score"](user_id=tf.constant(users[:pairs]), item_id=tf.constant(items[:pairs]))["score"].numpy()
        if not np.isfinite(score).all():
            raise ValueError("signature score answered a probe request with NaN or infinite scores")
        if "similar_items" in expected:
            _check_ranked("similar_items", loaded.signatures["similar_items"](item_id=tf.constant(items), k=k))
    except tf.errors.OpError as error:
        raise ValueError(f"a signature failed on a probe request ({error.message.splitlines()[0]})") from None
