"""``tfrec.fit``: the convenience over ``model.fit`` for a ``tfrec.data.Dataset``, with TensorBoard runs."""
from tfrec.training.fit import FitResult, fit

__all__ = ["FitResult", "fit"]
