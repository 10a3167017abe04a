"""What every model is and takes, without TensorFlow: description, parameter rules, defaults, presets.

One ``ModelSpec`` per registered model name (``SPECS``): its one-sentence description,
the rule of each constructor keyword argument (``tfrec.models.params.Param``, in
signature order; the model class's ``PARAMS`` is this dict), the constructor's defaults
(the same values as its signature; ``tests/test_params.py`` compares them), and its
*presets*: the parameters that differ from the defaults in the model's good setting for
a benchmark protocol. The protocols are those of ``tfrec.data.Split.protocol``: "R"
(rating prediction, the ML-100K folds ``u1``..``u5``), "T" (top-N, ``temporal``) and
"S" (next item, ``leave-last``). A model without a preset for a protocol uses its
defaults there.

``tfrec.models.registry.params_for(name, preset, **overrides)`` resolves a preset plus
user overrides; ``make_model(name, preset="T")``, ``tfrec train`` (``--preset``, by
default the split's protocol) and ``tfrec bench`` all use it. ``tfrec models`` prints
this module as tables; reading it imports neither TensorFlow nor any model module.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from tfrec.models.params import TIMESTAMP_UNITS, Param

#: The presets a model may have: protocol letter -> the task it stands for.
PRESET_PROTOCOLS: dict[str, str] = {"R": "rating prediction", "T": "top-N recommendation", "S": "next-item prediction"}


@dataclass(frozen=True)
class ModelSpec:
    """Everything about a model that needs no TensorFlow.

    description: one complete sentence: what the model does.
    params: the rule of every constructor keyword argument, in signature order.
    defaults: the constructor's default of every parameter (same keys, same order).
    presets: protocol letter ("R", "T", "S") -> the parameters of the good setting for
        that task that differ from ``defaults``.
    """

    description: str
    params: dict[str, Param]
    defaults: dict[str, Any]
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if list(self.params) != list(self.defaults):
            raise ValueError(f"params {list(self.params)} and defaults {list(self.defaults)} name different parameters")
        for protocol, preset in self.presets.items():
            unknown = [key for key in preset if key not in self.params]
            if protocol not in PRESET_PROTOCOLS or unknown:
                raise ValueError(f"preset {protocol!r}: not a protocol of {sorted(PRESET_PROTOCOLS)}, or unknown parameters {unknown}")


# ------------------------------------------------------------ shared choices
#: ``idf`` and ``norm`` of ``tfidf`` (the same tuples as ``tfrec.layers.tfidf``).
IDF_MODES = ("smooth", "plain", "keras", "none")
NORMS = ("l2", "l1", "none")
#: ``source`` of ``covisit``.
COVISIT_SOURCES = ("auto", "sessions", "interactions")
#: ``similarity``, ``rating_form`` and ``feedback`` of the kNN models (``RATING_SIMILARITIES``
#: is the same tuple as ``tfrec.layers.neighbours``'s).
RATING_SIMILARITIES = ("cosine", "pearson", "adjusted_cosine", "msd", "pearson_baseline")
RATING_FORMS = ("basic", "means", "baseline")
KNN_FEEDBACK = ("implicit", "explicit")
#: ``feedback`` and ``solver`` of ``mf``.
MF_FEEDBACK = ("explicit", "implicit")
MF_SOLVERS = ("adam", "als")

#: The rules of the training hyperparameters every trained model has (``mf``, ``two_tower``).
TRAINING_PARAMS: dict[str, Param] = {
    "epochs": Param(int, minimum=1, doc="maximum number of epochs (early stopping may end sooner)"),
    "learning_rate": Param(float, minimum=0, exclusive_minimum=True, doc="Adam's learning rate"),
    "validation_fraction": Param(
        float, minimum=0, maximum=0.5, exclusive_maximum=True,
        doc="share of the training interactions held out for early stopping (0: none, all epochs)",
    ),
    "patience": Param(int, minimum=1, doc="epochs without improvement before early stopping"),
    "refit": Param(
        bool, optional="only under 1,000,000 training examples",
        doc="after early stopping, refit on all training interactions for the best number of epochs (else keep the best weights)",
    ),
    "seed": Param(int, minimum=0, maximum=2**32 - 1, doc="seeds initialisation, validation slice and data order"),
}


def _neighbour_params(entity: str) -> dict[str, Param]:
    """The parameters of ``item_knn`` (``entity="item"``) and ``user_knn`` (``"user"``)."""
    return {
        "neighbours": Param(int, minimum=1, doc=f"most similar {entity}s kept per {entity} (the table width)"),
        "rating_neighbours": Param(int, minimum=1, doc="the most similar rated neighbours a predicted rating uses"),
        "min_rating_neighbours": Param(int, minimum=0, doc="with fewer usable neighbours a rating drops the neighbourhood term"),
        "rating_form": Param(str, choices=RATING_FORMS, doc="rating prediction: Surprise's KNNBasic, KNNWithMeans or KNNBaseline"),
        "similarity": Param(str, choices=RATING_SIMILARITIES, doc="similarity of two rows (implicit feedback: cosine only)"),
        "feedback": Param(str, choices=KNN_FEEDBACK, doc="implicit: binarised interactions; explicit: the ratings"),
        "shrinkage": Param(float, minimum=0, optional="100 for pearson_baseline, else 10", doc="support shrinkage n / (n + shrinkage)"),
        "min_support": Param(int, minimum=0, doc="pairs with fewer co-ratings have similarity 0"),
        "baseline_reg_u": Param(float, minimum=0, doc="user bias regularisation of the baseline ALS"),
        "baseline_reg_i": Param(float, minimum=0, doc="item bias regularisation of the baseline ALS"),
        "baseline_epochs": Param(int, minimum=0, doc="epochs of the baseline ALS"),
    }


def _neighbour_defaults(neighbours: int) -> dict[str, Any]:
    return {
        "neighbours": neighbours, "rating_neighbours": 40, "min_rating_neighbours": 1, "rating_form": "baseline", "similarity": "cosine",
        "feedback": "implicit", "shrinkage": None, "min_support": 1, "baseline_reg_u": 15.0, "baseline_reg_i": 10.0, "baseline_epochs": 10,
    }


#: Protocol R for the kNN models: Surprise's KNNBaseline (pearson_baseline similarity on the ratings).
_KNN_BASELINE = {"feedback": "explicit", "similarity": "pearson_baseline", "rating_form": "baseline", "neighbours": 2000}

#: Every model by its registry name, in ``tfrec.models.registry.MODEL_PATHS`` order.
SPECS: dict[str, ModelSpec] = {
    "popularity": ModelSpec(
        description="Recommends the items with the most training interactions, optionally weighted by rating and decayed with age.",
        params={
            "rating_weighted": Param(bool, doc="weight each interaction by its rating instead of 1"),
            "time_half_life": Param(
                float, minimum=0, exclusive_minimum=True, optional="no time decay",
                doc="an interaction's weight halves every time_half_life before the latest training timestamp", unit=TIMESTAMP_UNITS,
            ),
        },
        defaults={"rating_weighted": False, "time_half_life": None},
    ),
    "tfidf": ModelSpec(
        description="Ranks items by the cosine between their TF-IDF text vector and the user's profile, "
                    "the rating-weighted mean of the vectors of the user's items.",
        params={
            "lowercase": Param(bool, doc="lower-case the text before tokenising"),
            "min_df": Param(int, minimum=1, doc="terms in fewer item texts are dropped (a number of documents)"),
            "max_features": Param(int, minimum=1, optional="every term", doc="keep only the terms most frequent over the corpus"),
            "idf": Param(str, choices=IDF_MODES, doc="idf formula: smooth (scikit-learn's default), plain, keras or none"),
            "sublinear_tf": Param(bool, doc="term frequency 1 + ln(count) instead of the count"),
            "norm": Param(str, choices=NORMS, doc="row normalisation of the item vectors"),
            "rating_weighted": Param(bool, doc="weight each profile item by its rating"),
            "centered": Param(bool, doc="weight each profile item by its rating minus the user's mean"),
        },
        defaults={"lowercase": True, "min_df": 1, "max_features": None, "idf": "smooth", "sublinear_tf": False, "norm": "l2",
                  "rating_weighted": True, "centered": False},
    ),
    "covisit": ModelSpec(
        description="Scores items by how often they occur near the user's latest items in the same sessions (co-visitation counts).",
        params={
            "window": Param(int, minimum=2, doc="pairs at most window - 1 positions apart are counted"),
            "directed": Param(bool, doc="count only 'a_q came after a_p' (next-item), not both directions"),
            "source": Param(str, choices=COVISIT_SOURCES, doc="sessions: data.sessions; interactions: each user's items in time order; auto: sessions if any"),
            "session_gap": Param(
                float, minimum=0, exclusive_minimum=True, optional="one session per user",
                doc="a larger gap between consecutive interactions starts a new session", unit=TIMESTAMP_UNITS,
            ),
            "max_time_gap": Param(
                float, minimum=0, exclusive_minimum=True, optional="no limit",
                doc="pairs further apart in time are not counted", unit=TIMESTAMP_UNITS,
            ),
            "position_decay": Param(float, minimum=0, maximum=1, exclusive_minimum=True, doc="weight factor per position between the two items"),
            "time_half_life": Param(
                float, minimum=0, exclusive_minimum=True, optional="no time decay",
                doc="a pair's weight halves every time_half_life between its two interactions", unit=TIMESTAMP_UNITS,
            ),
            "neighbours": Param(int, minimum=1, doc="neighbours kept per item (the heaviest)"),
            "history_length": Param(int, minimum=1, doc="the user's latest items that are scored from"),
            "history_decay": Param(float, minimum=0, maximum=1, exclusive_minimum=True, doc="weight factor per step back in the user's history"),
            "popularity_tiebreak": Param(float, minimum=0, doc="weight of the popularity term that breaks ties"),
        },
        defaults={"window": 5, "directed": False, "source": "auto", "session_gap": None, "max_time_gap": None, "position_decay": 1.0,
                  "time_half_life": None, "neighbours": 100, "history_length": 5, "history_decay": 0.5, "popularity_tiebreak": 0.01},
    ),
    "user_knn": ModelSpec(
        description="Ranks the items of the most similar users and predicts ratings in Surprise's user-based kNN forms.",
        params=_neighbour_params("user"),
        defaults=_neighbour_defaults(50),
        presets={"R": dict(_KNN_BASELINE)},
    ),
    "item_knn": ModelSpec(
        description="Ranks items by their summed similarity to the user's items and predicts ratings in Surprise's item-based kNN forms.",
        params=_neighbour_params("item"),
        defaults=_neighbour_defaults(300),
        presets={"R": {**_KNN_BASELINE, "shrinkage": 200.0, "baseline_reg_u": 5.0, "baseline_reg_i": 5.0}},
    ),
    "mf": ModelSpec(
        description="Matrix factorization fitted by alternating least squares or Adam: biased for explicit ratings, iALS-style for implicit feedback.",
        params={
            "feedback": Param(str, choices=MF_FEEDBACK, doc="explicit: predicted ratings; implicit: interactions as positives"),
            "factors": Param(int, minimum=1, doc="dimension of the user and item vectors"),
            "epochs": replace(TRAINING_PARAMS["epochs"], optional="8 with solver als (sweeps), 40 with adam"),
            "batch_size": Param(int, minimum=1, optional="4096 explicit / 2048 implicit", doc="examples per gradient step"),
            "learning_rate": TRAINING_PARAMS["learning_rate"],
            "l2": Param(float, minimum=0, exclusive_minimum=True, optional="1.3 explicit; implicit 0.05 als / 0.01 adam", doc="factor penalty"),
            "bias_l2": Param(float, minimum=0, doc="bias penalty (explicit)"),
            "unobserved_weight": Param(float, minimum=0, doc="w0, weight of the squared scores of all user-item pairs (implicit)"),
            "solver": Param(str, choices=MF_SOLVERS, doc="als: one alternating-least-squares sweep per epoch; adam: mini-batch gradient steps"),
            "validation_fraction": replace(TRAINING_PARAMS["validation_fraction"], optional="0 with solver als, 0.05 with adam"),
            "patience": TRAINING_PARAMS["patience"],
            "refit": TRAINING_PARAMS["refit"],
            "seed": TRAINING_PARAMS["seed"],
        },
        defaults={"feedback": "explicit", "factors": 64, "epochs": None, "batch_size": None, "learning_rate": 0.01, "l2": None, "bias_l2": 1.0,
                  "unobserved_weight": 0.02, "solver": "als", "validation_fraction": None, "patience": 3, "refit": None, "seed": 0},
        presets={"T": {"feedback": "implicit"}, "S": {"feedback": "implicit"}},
    ),
    "two_tower": ModelSpec(
        description="Two-tower retrieval (TensorFlow Recommenders) with an id and history query tower, an id, title and genre candidate tower "
                    "and a logQ-corrected in-batch softmax.",
        params={
            "embedding_dim": Param(int, minimum=1, doc="size of every id / token / category embedding"),
            "output_dim": Param(int, minimum=1, doc="size of the query and candidate embeddings"),
            "depth": Param(int, minimum=1, doc="dense layers per tower (1 = one linear projection)"),
            "temperature": Param(float, minimum=0, exclusive_minimum=True, doc="softmax temperature of the retrieval loss"),
            "learning_rate": TRAINING_PARAMS["learning_rate"],
            "epochs": TRAINING_PARAMS["epochs"],
            "batch_size": Param(int, minimum=1, doc="examples per gradient step"),
            "history_length": Param(int, minimum=1, doc="how many recent items the query tower pools"),
            "logq_correction": Param(bool, doc="subtract the log sampling probability from the in-batch logits"),
            "user_dropout": Param(float, minimum=0, maximum=1, exclusive_maximum=True, doc="share of training examples whose user id is hidden"),
            "min_token_count": Param(int, minimum=1, doc="title tokens used by fewer items are dropped"),
            "validation_fraction": TRAINING_PARAMS["validation_fraction"],
            "patience": TRAINING_PARAMS["patience"],
            "refit": TRAINING_PARAMS["refit"],
            "seed": TRAINING_PARAMS["seed"],
        },
        defaults={"embedding_dim": 64, "output_dim": 64, "depth": 1, "temperature": 0.1, "learning_rate": 0.003, "epochs": 20, "batch_size": 1024,
                  "history_length": 20, "logq_correction": True, "user_dropout": 0.1, "min_token_count": 2, "validation_fraction": 0.05,
                  "patience": 3, "refit": None, "seed": 0},
    ),
}
