"""Fitting: the one entry point every model walks through, and its TensorBoard logs."""
from tfrec.training.fit import FitResult, fit

__all__ = ["FitResult", "fit"]
