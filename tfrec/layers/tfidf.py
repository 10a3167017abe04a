"""TF-IDF text vectors with TensorFlow string ops, scikit-learn's formulas by default.

``TfidfVectorizer`` is fitted once on a corpus (``adapt_texts``) and then turns any text,
including the text of an item that did not exist at fit time, into a sparse vector over
the fitted vocabulary (``vectorize``), with TF ops only, so it runs inside exported
serving functions.

Why not ``keras.layers.TextVectorization(output_mode="tf_idf")``: its idf is
``ln(1 + n / (1 + df))`` (available here as ``idf="keras"``), it does not normalise rows,
and it returns dense ``[batch, vocabulary]`` tensors. This layer returns
``tf.SparseTensor``s and defaults to scikit-learn's ``TfidfVectorizer()``.
"""
from __future__ import annotations

import numpy as np

from tfrec._keras import keras, tf

#: Characters that make up a token: Python's Unicode ``\\w`` (letters, numbers, underscore).
_NOT_WORD = r"[^\p{L}\p{N}_]+"

IDF_MODES = ("smooth", "plain", "keras", "none")
NORMS = ("l2", "l1", "none")


def check_tfidf_params(lowercase, min_df, max_features, idf, sublinear_tf, norm) -> None:
    """ValueError naming the parameter and its allowed values."""
    if not isinstance(lowercase, (bool, np.bool_)):
        raise ValueError(f"lowercase must be True or False, got {lowercase!r}")
    if isinstance(min_df, bool) or not isinstance(min_df, (int, np.integer)) or min_df < 1:
        raise ValueError(f"min_df must be an integer >= 1 (a number of documents), got {min_df!r}")
    if max_features is not None and (isinstance(max_features, bool) or not isinstance(max_features, (int, np.integer)) or max_features < 1):
        raise ValueError(f"max_features must be None or an integer >= 1, got {max_features!r}")
    if idf not in IDF_MODES:
        raise ValueError(f"idf must be one of {', '.join(map(repr, IDF_MODES))}; got {idf!r}")
    if not isinstance(sublinear_tf, (bool, np.bool_)):
        raise ValueError(f"sublinear_tf must be True or False, got {sublinear_tf!r}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(map(repr, NORMS))}; got {norm!r}")


class TfidfVectorizer(keras.layers.Layer):
    """Sparse TF-IDF vectors, fitted on a corpus; defaults equal scikit-learn's.

    Tokens (scikit-learn's default analyzer): the text is lower-cased (Unicode, when
    ``lowercase``), then a token is every maximal run of word characters (Unicode letters,
    numbers and ``_``) at least two characters long: the same tokens as the regular
    expression ``(?u)\\b\\w\\w+\\b``. Vocabulary: every token that occurs in at least
    ``min_df`` documents; with ``max_features``, only the ``max_features`` tokens most
    frequent over the corpus (ties: alphabetical). Terms are indexed in alphabetical
    (code point) order, like scikit-learn's ``vocabulary_``.

    For a document d and a term t, with n documents in the fitted corpus and df(t) the
    number of them that contain t:

    - tf(t, d) = count of t in d, or 1 + ln(count) when ``sublinear_tf``;
    - idf(t) = ``"smooth"``: ln((1 + n) / (1 + df)) + 1 (scikit-learn's default),
      ``"plain"``: ln(n / df) + 1 (scikit-learn's ``smooth_idf=False``),
      ``"keras"``: ln(1 + n / (1 + df)) (Keras ``TextVectorization``), ``"none"``: 1;
    - v(d)[t] = tf(t, d) * idf(t), then divided by ||v(d)||_2 (``norm="l2"``, default),
      by ||v(d)||_1 (``"l1"``) or left as is (``"none"``). A document without known terms
      is the zero vector.

    Weights: ``vocabulary`` string[V], ``idf`` float32[V], ``document_frequency``
    int64[V], ``n_documents`` int64[]. ``vectorize(texts string[B])`` returns a
    ``tf.SparseTensor`` float32[B, V] with indices in row-major order.
    """

    def __init__(
        self,
        lowercase: bool = True,
        min_df: int = 1,
        max_features: int | None = None,
        idf: str = "smooth",
        sublinear_tf: bool = False,
        norm: str = "l2",
        **kwargs,
    ):
        super().__init__(trainable=False, **kwargs)
        self.lowercase = lowercase
        self.min_df = min_df
        self.max_features = max_features
        self.idf_mode = idf
        self.sublinear_tf = sublinear_tf
        self.norm = norm
        self._table = tf.lookup.experimental.MutableHashTable(tf.string, tf.int64, default_value=-1)
        self.vocabulary = tf.Variable([""], shape=tf.TensorShape([None]), dtype=tf.string, trainable=False, name="vocabulary")
        self.idf = tf.Variable(tf.zeros([0], tf.float32), shape=tf.TensorShape([None]), trainable=False, name="idf")
        self.document_frequency = tf.Variable(
            tf.zeros([0], tf.int64), shape=tf.TensorShape([None]), trainable=False, name="document_frequency"
        )
        self.n_documents = tf.Variable(tf.constant(0, tf.int64), trainable=False, name="n_documents")

    # ----------------------------------------------------------------- fitting
    def tokenize(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """string[B] -> ragged string[B, None]: the tokens of each text, in text order."""
        texts = tf.convert_to_tensor(texts, tf.string)
        if self.lowercase:
            texts = tf.strings.lower(texts, encoding="utf-8")
        words = tf.strings.split(tf.strings.regex_replace(texts, _NOT_WORD, " "))
        return tf.ragged.boolean_mask(words, tf.strings.length(words, unit="UTF8_CHAR") >= 2)

    def adapt_texts(self, texts) -> None:
        """Fit vocabulary, document frequencies and idf on a corpus (string[n]).

        The parameters are checked here, before fitting (``TfidfRecommender`` checks them
        earlier, against its ``PARAMS``).
        """
        check_tfidf_params(self.lowercase, self.min_df, self.max_features, self.idf_mode, self.sublinear_tf, self.norm)
        texts = np.asarray(texts, dtype=object).astype(str)
        tokens = self.tokenize(tf.constant(texts.astype(object), tf.string))
        flat = tokens.flat_values
        terms, term_of_token = tf.unique(flat)
        n_terms = tf.cast(tf.shape(terms)[0], tf.int64)
        doc_term = tokens.value_rowids() * n_terms + tf.cast(term_of_token, tf.int64)
        present = tf.unique(doc_term).y % n_terms  # one entry per (document, term)
        df = tf.math.bincount(present, minlength=n_terms, maxlength=n_terms, dtype=tf.int64).numpy()
        total = tf.math.bincount(tf.cast(term_of_token, tf.int64), minlength=n_terms, maxlength=n_terms, dtype=tf.int64).numpy()
        words = np.array([t.decode("utf-8") for t in terms.numpy()], dtype=object)
        keep = df >= self.min_df
        words, df, total = words[keep], df[keep], total[keep]
        order = np.argsort(words.astype(str), kind="stable")  # alphabetical (code points)
        words, df, total = words[order], df[order], total[order]
        if self.max_features is not None and len(words) > self.max_features:
            chosen = np.sort(np.argsort(-total, kind="stable")[: self.max_features])
            words, df = words[chosen], df[chosen]
        if len(words) == 0:
            raise ValueError(
                f"{self.name}: the corpus has no token (no run of 2+ letters/digits in {len(texts)} texts"
                + (f" occurring in at least min_df={self.min_df} of them" if self.min_df > 1 else "")
                + "); content models need item text (Dataset.items['text'])"
            )
        n = float(len(texts))
        dff = df.astype(np.float64)
        if self.idf_mode == "smooth":
            idf = np.log((1.0 + n) / (1.0 + dff)) + 1.0
        elif self.idf_mode == "plain":
            idf = np.log(n / dff) + 1.0
        elif self.idf_mode == "keras":
            idf = np.log(1.0 + n / (1.0 + dff))
        else:
            idf = np.ones_like(dff)
        self._table.remove(self._table.export()[0])
        self._table.insert(words.astype(str).astype(object), np.arange(len(words), dtype=np.int64))
        self.vocabulary.assign(words.astype(str).astype(object))
        self.idf.assign(idf.astype(np.float32))
        self.document_frequency.assign(df.astype(np.int64))
        self.n_documents.assign(len(texts))
        self.built = True

    @property
    def vocabulary_size(self) -> int:
        return int(tf.shape(self.vocabulary)[0])

    # ---------------------------------------------------------------- vectors
    def vectorize(self, texts: tf.Tensor) -> tf.SparseTensor:
        """string[B] -> tf.SparseTensor float32[B, V] (see the class docstring)."""
        tokens = self.tokenize(texts)
        batch = tokens.nrows(out_type=tf.int64)
        n_terms = tf.cast(tf.shape(self.idf)[0], tf.int64)
        term = self._table.lookup(tokens.flat_values)
        known = term >= 0
        key = tf.boolean_mask(tokens.value_rowids() * n_terms + term, known)
        key, _, count = tf.unique_with_counts(key)
        order = tf.argsort(key, stable=True)
        key, count = tf.gather(key, order), tf.cast(tf.gather(count, order), tf.float64)
        row, col = key // n_terms, key % n_terms
        tf_weight = 1.0 + tf.math.log(count) if self.sublinear_tf else count
        values = tf_weight * tf.cast(tf.gather(self.idf, col), tf.float64)
        if self.norm != "none":
            size = values * values if self.norm == "l2" else tf.abs(values)
            total = tf.math.unsorted_segment_sum(size, row, batch)
            total = tf.sqrt(total) if self.norm == "l2" else total
            values = values / tf.gather(total, row)
        return tf.SparseTensor(tf.stack([row, col], axis=1), tf.cast(values, tf.float32), tf.stack([batch, n_terms]))

    def call(self, texts: tf.Tensor) -> tf.SparseTensor:
        return self.vectorize(texts)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "lowercase": self.lowercase,
            "min_df": self.min_df,
            "max_features": self.max_features,
            "idf": self.idf_mode,
            "sublinear_tf": self.sublinear_tf,
            "norm": self.norm,
        }
