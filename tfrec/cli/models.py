"""``tfrec models``: every model's parameters and presets as tables, from the TF-free specs."""
from __future__ import annotations

from tfrec.cli.common import cli_value


def cmd_models(args) -> int:
    from tfrec.models.registry import describe_models  # the specs only: no model module, no TensorFlow

    print("\n\n".join(_model_table(name, spec) for name, spec in describe_models().items()))
    return 0


def _model_table(name: str, spec) -> str:
    """One model of ``tfrec models``: its description, then one row per parameter (default,
    allowed values, unit, meaning) and its presets (``tfrec.models.specs.ModelSpec``)."""
    from dataclasses import replace

    from tfrec.models.specs import PRESET_PROTOCOLS

    rows = [("parameter", "default", "allowed values", "unit", "meaning")]
    rows += [(key, cli_value(spec.defaults[key]), replace(rule, unit="").rule(), rule.unit, rule.doc) for key, rule in spec.params.items()]
    if not any(row[3] for row in rows[1:]):
        rows = [row[:3] + row[4:] for row in rows]  # no parameter has a unit: no unit column
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    lines = [f"{name}: {spec.description}"]
    lines += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1] for row in rows]
    if not spec.presets:
        lines.append("  presets: none (the defaults for every protocol)")
        return "\n".join(lines)
    lines.append("  presets (tfrec train --preset, by default the split's protocol; other protocols: the defaults):")
    lines += [
        f"    {protocol} ({PRESET_PROTOCOLS[protocol]}): " + " ".join(f"{key}={cli_value(value)}" for key, value in preset.items())
        for protocol, preset in spec.presets.items()
    ]
    return "\n".join(lines)
