"""The two towers of ``two_tower``: Keras layers whose forward pass is a pure function of weights.

Each tower is a Keras layer for training, and its computation is a plain function of a
dict of weight tensors (``query_forward`` / ``candidate_forward``). Training calls the
function with the layer's trainable variables; serving calls the very same function with
the model's shape-free copies of them (so a refit on data of another size assigns new
values and traced serving functions stay valid). One definition, two uses.

Shapes: ``d_e`` = ``embedding_dim``, ``d`` = ``output_dim``, ``L`` = ``depth``.

Query tower, for user ``u`` with history ``h_1..h_H`` (item indices, 0 = padding):

    x = [ E_user[u] ; mean_{h_j > 0} E_hist[h_j] ]                      (2 d_e)
    x = relu(x W_l + b_l) for l < L;  q = x W_L + b_L                     (d)

Candidate tower, for item ``i`` with title tokens ``t_1..t_T`` and categories ``g_1..g_G``
(0 = padding):

    x = [ E_item[i] ; mean_{t_j > 0} E_token[t_j] ; mean_{g_j > 0} E_cat[g_j] ]   (3 d_e)
    x = relu(x W_l + b_l) for l < L;  c = x W_L + b_L                              (d)

Hidden layers have width ``2 d``. Row 0 of every embedding table is the unknown /
padding entry (the user row 0 is what users outside the training data get).
"""
from __future__ import annotations

from tfrec._keras import keras, tf


def masked_mean(table: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """Mean of ``table[index[b, j]]`` over the entries with ``index > 0``: float32[B, e] (0 if none).

    One ``SparseSegmentMean`` over the non-zero entries (row-major, so the segment ids
    are sorted): no [B, H, e] gather. Its gradient (``sparse_gradient``) is an
    ``IndexedSlices`` over the distinct rows used, summed per row, not one slice per entry.
    """
    index = tf.convert_to_tensor(index)
    entries = tf.where(index > 0)
    rows = tf.shape(index, out_type=tf.int64)[0]
    return tf.sparse.segment_mean(table, tf.gather_nd(index, entries), entries[:, 0], num_segments=rows, sparse_gradient=True)


#: Rows a batch is padded to (at least) before a batch-invariant matmul (see there).
INVARIANT_MIN_ROWS = 16


def batch_invariant_matmul(a: tf.Tensor, b: tf.Tensor, transpose_b: bool = False) -> tf.Tensor:
    """float32 ``a @ b`` that does not depend on how many rows ``a`` has.

    A float32 matmul's accumulation order depends on the kernel, and TensorFlow's CPU
    matmul picks another kernel for fewer than 16 rows, so a query scored alone and in a
    batch could differ in the last bit. With ``a`` padded with zero rows to at least
    ``INVARIANT_MIN_ROWS``, every batch size takes the same kernel, whose per-element
    sum over the shared dimension runs in one order (``tests/test_two_tower.py`` checks
    1 to 40 rows against a large batch, bit for bit). The padding costs nothing on
    batches and at most 15 extra rows on single requests; float32 throughout, about 3x
    faster than the float64 accumulation this replaced.
    """
    rows = tf.shape(a)[0]
    padded = tf.pad(a, [[0, tf.maximum(INVARIANT_MIN_ROWS - rows, 0)], [0, 0]])
    return tf.linalg.matmul(padded, b, transpose_b=transpose_b)[:rows]


def dense_stack(weights: dict[str, tf.Tensor], x: tf.Tensor, depth: int, serving: bool = False) -> tf.Tensor:
    """``depth`` dense layers (relu between them); ``serving``: batch-invariant matmuls."""
    matmul = batch_invariant_matmul if serving else tf.linalg.matmul
    for layer in range(depth):
        x = matmul(x, weights[f"kernel_{layer}"]) + weights[f"bias_{layer}"]
        if layer < depth - 1:
            x = tf.nn.relu(x)
    return x


def query_forward(weights: dict[str, tf.Tensor], user_idx: tf.Tensor, history_idx: tf.Tensor, depth: int, serving: bool = False) -> tf.Tensor:
    """Query embeddings float32[B, d] (module docstring) from int64 ``user_idx`` [B], ``history_idx`` [B, H]."""
    x = tf.concat([tf.gather(weights["user_embedding"], user_idx), masked_mean(weights["history_embedding"], history_idx)], axis=1)
    return dense_stack(weights, x, depth, serving)


def candidate_forward(weights: dict[str, tf.Tensor], item_idx: tf.Tensor, title_tokens: tf.Tensor, categories: tf.Tensor, depth: int) -> tf.Tensor:
    """Candidate embeddings float32[B, d] from int64 ``item_idx`` [B], ``title_tokens`` [B, T], ``categories`` [B, G]."""
    x = tf.concat(
        [
            tf.gather(weights["item_embedding"], item_idx),
            masked_mean(weights["token_embedding"], title_tokens),
            masked_mean(weights["category_embedding"], categories),
        ],
        axis=1,
    )
    return dense_stack(weights, x, depth)


def tower_weight_names(embeddings: tuple[str, ...], depth: int) -> list[str]:
    return [*embeddings, *(f"{kind}_{layer}" for layer in range(depth) for kind in ("kernel", "bias"))]


QUERY_EMBEDDINGS = ("user_embedding", "history_embedding")
CANDIDATE_EMBEDDINGS = ("item_embedding", "token_embedding", "category_embedding")


class _Tower(keras.layers.Layer):
    """Embedding tables (sizes given) and a dense stack, as named trainable weights.

    ``tower_weights`` keys: the table names, ``kernel_<l>``, ``bias_<l>``; the variables are
    named after the tower, e.g. ``query_tower/user_embedding``, ``query_tower/dense_0/kernel``
    (what the weight histograms of Keras' TensorBoard callback are called).
    """

    def __init__(self, tables: dict[str, int], embedding_dim: int, output_dim: int, depth: int, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.depth = depth
        self.tower_weights: dict[str, tf.Variable] = {}
        for offset, (name, rows) in enumerate(tables.items()):
            init = keras.initializers.RandomNormal(stddev=1.0 / embedding_dim**0.5, seed=seed + offset)
            self.tower_weights[name] = self.add_weight(name=f"{self.name}/{name}", shape=(rows, embedding_dim), initializer=init)
        width = embedding_dim * len(tables)
        for layer in range(depth):
            out = output_dim if layer == depth - 1 else 2 * output_dim
            init = keras.initializers.GlorotUniform(seed=seed + 100 + layer)
            self.tower_weights[f"kernel_{layer}"] = self.add_weight(name=f"{self.name}/dense_{layer}/kernel", shape=(width, out), initializer=init)
            self.tower_weights[f"bias_{layer}"] = self.add_weight(name=f"{self.name}/dense_{layer}/bias", shape=(out,), initializer="zeros")
            width = out


class QueryTower(_Tower):
    """Keras layer: ``call(user_idx, history_idx) -> float32[B, d]`` (see ``query_forward``)."""

    def __init__(self, n_users: int, n_items: int, embedding_dim: int, output_dim: int, depth: int, seed: int, **kwargs):
        super().__init__({"user_embedding": n_users, "history_embedding": n_items}, embedding_dim, output_dim, depth, seed, **kwargs)

    def call(self, user_idx: tf.Tensor, history_idx: tf.Tensor) -> tf.Tensor:
        return query_forward(self.tower_weights, user_idx, history_idx, self.depth)


class CandidateTower(_Tower):
    """Keras layer: ``call(item_idx) -> float32[B, d]``; item features are looked up from
    the fixed tables ``title_tokens`` int64[n_items + 1, T] and ``categories`` [n_items + 1, G]."""

    def __init__(
        self, n_items: int, n_tokens: int, n_categories: int, title_tokens, categories, embedding_dim: int, output_dim: int, depth: int, seed: int, **kwargs
    ):
        tables = {"item_embedding": n_items, "token_embedding": n_tokens, "category_embedding": n_categories}
        super().__init__(tables, embedding_dim, output_dim, depth, seed + 10, **kwargs)
        self.title_tokens = tf.constant(title_tokens, tf.int64)
        self.categories = tf.constant(categories, tf.int64)

    def call(self, item_idx: tf.Tensor) -> tf.Tensor:
        # Each distinct item once: a batch of B examples often holds far fewer items.
        unique, position = tf.unique(item_idx)
        embeddings = candidate_forward(
            self.tower_weights, unique, tf.gather(self.title_tokens, unique), tf.gather(self.categories, unique), self.depth
        )
        return tf.gather(embeddings, position)
