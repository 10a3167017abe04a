"""Hyperparameter specs: one declarative rule per model parameter, checked before fitting.

Every model declares ``PARAMS: ClassVar[dict[str, Param]]`` next to its constructor,
one entry per keyword argument of the constructor, in the same order (the defaults stay
in the constructor's signature)::

    PARAMS = {
        "neighbours": Param(int, minimum=1, doc="neighbours kept per item"),
        "time_half_life": Param(float, minimum=0, exclusive_minimum=True, optional="no time decay",
                                doc="half-life of an interaction's weight", unit=TIMESTAMP_UNITS),
        "feedback": Param(str, choices=("explicit", "implicit"), doc="ratings or interactions as positives"),
    }

``Recommender.check_params()`` (run first by ``fit``, and by ``make_model``) checks
every value against its spec with one message format,
``"<model>: <param> must be <rule>, got <value!r>"`` (``ValueError``), then runs the
model's ``check_param_combinations()`` for rules that involve several parameters.
``tfrec.models.registry.parse_param`` parses command-line text by the spec's ``kind``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

#: The unit of parameters measured on the timestamp axis.
TIMESTAMP_UNITS = "timestamp units (seconds for MovieLens)"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_KIND_NAMES = {int: "an integer", float: "a number", bool: "True or False", str: "a string"}


@dataclass(frozen=True)
class Param:
    """The rule of one hyperparameter.

    kind: ``int``, ``float``, ``bool`` or ``str``. ``int`` takes Python / numpy integers
        (not bools); ``float`` takes any finite real number (not bools); ``bool`` takes
        ``True`` / ``False`` (and numpy bools); ``str`` takes strings.
    minimum, maximum: bounds of a number (None: unbounded); ``exclusive_minimum`` /
        ``exclusive_maximum`` make a bound open (``> minimum`` rather than ``>= minimum``).
    choices: the allowed values of a ``str`` parameter.
    optional: None if the value must be given; otherwise None is allowed and this
        says what it means (e.g. "100 for pearson_baseline, else 10").
    doc: one line: what the parameter does.
    unit: the unit of a number, e.g. ``TIMESTAMP_UNITS``.
    """

    kind: type
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    choices: tuple[str, ...] | None = None
    optional: str | None = None
    doc: str = ""
    unit: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _KIND_NAMES:
            raise TypeError(f"Param kind must be int, float, bool or str, got {self.kind!r}")
        if self.choices is not None and self.kind is not str:
            raise TypeError("Param choices are for str parameters")
        if (self.minimum is not None or self.maximum is not None) and self.kind not in (int, float):
            raise TypeError("Param bounds are for int and float parameters")

    # ------------------------------------------------------------------ rule
    def rule(self) -> str:
        """The rule in words: "an integer >= 1", "a number in (0, 1]", "one of 'a', 'b'"."""
        if self.choices is not None:
            text = "one of " + ", ".join(map(repr, self.choices))
        else:
            text = _KIND_NAMES[self.kind]
            low = None if self.minimum is None else ("> " if self.exclusive_minimum else ">= ") + _number(self.minimum)
            high = None if self.maximum is None else ("< " if self.exclusive_maximum else "<= ") + _number(self.maximum)
            if low and high:
                text += f" in {'(' if self.exclusive_minimum else '['}{_number(self.minimum)}, {_number(self.maximum)}{')' if self.exclusive_maximum else ']'}"
            elif low or high:
                text += f" {low or high}"
        if self.unit:
            text += f", in {self.unit}"
        if self.optional is not None:
            text = f"None ({self.optional}) or {text}"
        return text

    def allows(self, value: Any) -> bool:
        """Whether ``value`` satisfies the rule."""
        if value is None:
            return self.optional is not None
        if self.kind is bool:
            return isinstance(value, (bool, np.bool_))
        if self.kind is str:
            return isinstance(value, str) and (self.choices is None or value in self.choices)
        if isinstance(value, (bool, np.bool_)):
            return False
        if self.kind is int and not isinstance(value, (int, np.integer)):
            return False
        if self.kind is float and not (isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(value)):
            return False
        if self.minimum is not None and not (value > self.minimum if self.exclusive_minimum else value >= self.minimum):
            return False
        return self.maximum is None or (value < self.maximum if self.exclusive_maximum else value <= self.maximum)

    def check(self, model: str, name: str, value: Any) -> None:
        """ValueError ``"<model>: <name> must be <rule>, got <value!r>"`` unless allowed."""
        if not self.allows(value):
            raise ValueError(f"{model}: {name} must be {self.rule()}, got {value!r}")

    # ------------------------------------------------------------- parsing
    def parse(self, text: str) -> Any:
        """The value of command-line ``text`` (``ValueError`` if it is not of the kind):
        "none" / "null" -> None (optional parameters), bools from true/false, yes/no,
        on/off, 1/0, numbers by ``int`` / ``float``, strings as given."""
        raw = text.strip()
        if self.optional is not None and raw.lower() in ("none", "null"):
            return None
        if self.kind is bool:
            if raw.lower() in _TRUE:
                return True
            if raw.lower() in _FALSE:
                return False
            raise ValueError(raw)
        if self.kind is int:
            return int(raw)
        if self.kind is float:
            return float(raw)
        return raw

    @property
    def kind_name(self) -> str:
        """"integer", "number", "bool" or "string" (for parse errors)."""
        return {int: "integer", float: "number", bool: "bool (true/false)", str: "string"}[self.kind]


def check_values(model: str, params: dict[str, Param], values: dict[str, Any]) -> None:
    """Check each of ``values`` against its spec in ``params`` (first failure raises)."""
    for name, spec in params.items():
        if name in values:
            spec.check(model, name, values[name])


def _number(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)
