"""String id <-> integer index vocabulary with an explicit out-of-vocabulary slot."""
from __future__ import annotations

import numpy as np

from tfrec._keras import keras, tf

OOV_INDEX = 0


class IdVocabulary(keras.layers.Layer):
    """Maps string ids to indices 1..n (0 = out of vocabulary) and back.

    Fitted with ``set_ids(ids)``; ids are stored in the order given (tfrec passes them
    sorted by ``tfrec.data.dataset.id_sort_key``, so a lower index means a lower id and
    ``tf.math.top_k``'s lower-index-first tie rule breaks ties by lower id).

    Shapes: ``lookup``: string[...] -> int64[...]; ``ids_of``: int[...] -> string[...],
    with index 0 mapped to "".
    """

    def __init__(self, **kwargs):
        super().__init__(trainable=False, **kwargs)
        # A mutable table, so that refitting updates it in place and traced serving
        # functions stay valid; its contents are saved with the SavedModel.
        self._table = tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, default_value=OOV_INDEX)
        self.ids = tf.Variable([""], shape=tf.TensorShape([None]), dtype=tf.string, trainable=False, name=f"{self.name}_ids")

    def set_ids(self, ids: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=object).astype(str)
        if len(ids) == 0:
            raise ValueError(f"{self.name}: cannot build a vocabulary from zero ids")
        if len(set(ids)) != len(ids) or "" in set(ids):
            raise ValueError(f"{self.name}: ids must be unique and non-empty")
        self._table.remove(self._table.export()[0])
        self._table.insert(ids.astype(object), np.arange(1, len(ids) + 1, dtype=np.int64))
        self.ids.assign(np.concatenate([[""], ids]).astype(object))
        self.built = True

    @property
    def size(self) -> int:
        """Number of slots including the out-of-vocabulary slot 0."""
        return int(tf.shape(self.ids)[0])

    def lookup(self, ids: tf.Tensor) -> tf.Tensor:
        indices = self._table.lookup(ids)
        indices.set_shape(ids.shape)  # the hash table forgets the static shape
        return indices

    def ids_of(self, indices: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.ids, indices)

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        return self.lookup(ids)
