"""Presets: each model's good setting per protocol, shared by the API, `tfrec train` and `tfrec bench`;
`tfrec models` as a table read from the specs alone."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tfrec.models import MODELS, UnknownModelError, make_model
from tfrec.models.registry import params_for

#: ``tfrec.bench.runner.PROTOCOL_PARAMS`` as it was before the presets moved into the models:
#: the bench must get exactly these parameters (same keys, values and order) per protocol.
OLD_PROTOCOL_PARAMS = {
    "R": {
        "item_knn": {"feedback": "explicit", "similarity": "pearson_baseline", "rating_form": "baseline", "neighbours": 2000,
                     "shrinkage": 200.0, "baseline_reg_u": 5.0, "baseline_reg_i": 5.0},
        "user_knn": {"feedback": "explicit", "similarity": "pearson_baseline", "rating_form": "baseline", "neighbours": 2000},
    },
    "T": {"mf": {"feedback": "implicit"}},
    "S": {"mf": {"feedback": "implicit"}},
}
PROTOCOLS = ("R", "T", "S")
CASES = [(name, protocol) for name in MODELS for protocol in PROTOCOLS]


@pytest.mark.parametrize("name, protocol", CASES, ids=[f"{n}-{p}" for n, p in CASES])
def test_presets_reproduce_the_old_bench_table(name, protocol):
    expected = OLD_PROTOCOL_PARAMS[protocol].get(name, {})
    assert list(params_for(name, protocol).items()) == list(expected.items())
    assert params_for(name, protocol.lower()) == expected
    assert params_for(name, None) == params_for(name, "none") == {}


def test_bench_plans_the_old_parameters():
    from tfrec.bench.runner import plan_jobs

    jobs, _ = plan_jobs("demo", list(PROTOCOLS), list(MODELS), peers=[])
    planned = {(job["protocol"], job["name"]): job["params"] for job in jobs}
    rating_models = {name for name in MODELS if make_model(name, preset="R").predicts_ratings}
    assert {name for protocol, name in planned if protocol == "R"} == rating_models
    for (protocol, name), params in planned.items():
        assert list(params.items()) == list(OLD_PROTOCOL_PARAMS[protocol].get(name, {}).items())
    jobs, _ = plan_jobs("demo", ["R"], ["item_knn:neighbours=50"], peers=[], params={"item_knn": {"shrinkage": 5.0}})
    assert jobs[0]["params"] == {**OLD_PROTOCOL_PARAMS["R"]["item_knn"], "shrinkage": 5.0, "neighbours": 50}


def test_an_override_wins_over_the_preset_and_make_model_applies_it():
    assert params_for("mf", "T", feedback="explicit") == {"feedback": "explicit"}
    assert params_for("item_knn", "R", neighbours=50) == {**OLD_PROTOCOL_PARAMS["R"]["item_knn"], "neighbours": 50}
    assert params_for("popularity", "T", rating_weighted=True) == {"rating_weighted": True}
    assert make_model("mf", preset="T").get_config() == make_model("mf", feedback="implicit").get_config()
    assert make_model("mf").feedback == "explicit"  # no preset: the constructor's defaults
    assert make_model("item_knn", preset="R", shrinkage=5.0).get_config()["shrinkage"] == 5.0
    assert make_model("item_knn", preset="R").similarity == "pearson_baseline"


def test_unknown_preset_or_parameter_is_refused():
    with pytest.raises(UnknownModelError, match="^unknown preset 'X'; presets are the protocols R .*, T .*, S .*, or none$"):
        params_for("mf", "X")
    with pytest.raises(UnknownModelError, match="unknown preset 'top'"):
        make_model("mf", preset="top")
    with pytest.raises(UnknownModelError, match="model 'mf' has no parameter 'k'"):
        params_for("mf", "T", k=3)
    with pytest.raises(UnknownModelError, match="unknown model 'nope'"):
        params_for("nope", "T")


def test_a_model_registered_outside_the_specs_is_described_from_its_class(monkeypatch):
    import types

    from tfrec.models import registry
    from tfrec.models.popularity import Popularity

    class Decayed(Popularity):
        """Popularity with a preset for protocol T."""

        registry_name = "decayed"
        PRESETS = {"T": {"time_half_life": 86400.0}}

    module = types.ModuleType("tfrec_test_decayed")
    module.Decayed = Decayed
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(registry.MODEL_PATHS, "decayed", "tfrec_test_decayed:Decayed")
    assert params_for("decayed", "T", rating_weighted=True) == {"time_half_life": 86400.0, "rating_weighted": True}
    assert make_model("decayed", preset="T").time_half_life == 86400.0
    spec = registry.describe_models()["decayed"]
    assert spec.description == "Popularity with a preset for protocol T."
    assert spec.defaults == {"rating_weighted": False, "time_half_life": None} and spec.params == Popularity.PARAMS


@pytest.fixture
def train_calls(monkeypatch):
    """`tfrec train` up to fitting: the parameters each model would be fitted with."""
    import tfrec.cli.train as cli

    calls = {}

    def record(name, params, split, args, strategy):
        calls[name] = params
        return {"model": name}

    monkeypatch.setattr(cli, "_train_one", record)
    return calls


@pytest.mark.parametrize(
    "argv, expected, line",
    [
        (["mf"], {"feedback": "implicit"}, "mf: preset T (feedback=implicit); override with --param KEY=VALUE, or --preset none for the constructor defaults"),
        (["mf", "--split", "leave-last"], {"feedback": "implicit"}, "mf: preset S (feedback=implicit)"),
        (["mf", "--preset", "none"], {}, None),
        (["mf", "--preset", "R"], {}, None),
        (["mf", "--param", "feedback=explicit"], {"feedback": "explicit"}, None),
        (["mf", "--param", "factors=8"], {"feedback": "implicit", "factors": 8}, "mf: preset T (feedback=implicit)"),
        (["item_knn", "--preset", "r", "--param", "neighbours=50"], {**OLD_PROTOCOL_PARAMS["R"]["item_knn"], "neighbours": 50},
         "item_knn: preset R (feedback=explicit similarity=pearson_baseline rating_form=baseline shrinkage=200 baseline_reg_u=5 baseline_reg_i=5)"),
        (["popularity"], {}, None),
    ],
)
def test_cli_train_applies_the_split_protocols_preset_and_says_so(argv, expected, line, train_calls, tmp_path, capsys):
    from tfrec.cli import main

    assert main(["train", *argv, "--data", "demo", "--export-dir", str(tmp_path / "sm"), "--logdir", str(tmp_path / "runs")]) == 0
    assert train_calls == {argv[0]: expected}
    preset_lines = [text for text in capsys.readouterr().out.splitlines() if ": preset " in text]
    if line is None:
        assert preset_lines == []
    else:
        assert len(preset_lines) == 1 and preset_lines[0].startswith(line)


def test_cli_train_all_gives_each_model_its_preset(train_calls, tmp_path, capsys):
    from tfrec.cli import main

    assert main(["train", "all", "--data", "demo", "--export-dir", str(tmp_path / "sm"), "--logdir", str(tmp_path / "runs")]) == 0
    assert train_calls == {name: OLD_PROTOCOL_PARAMS["T"].get(name, {}) for name in MODELS}
    assert [text for text in capsys.readouterr().out.splitlines() if ": preset " in text] == [
        "mf: preset T (feedback=implicit); override with --param KEY=VALUE, or --preset none for the constructor defaults"
    ]


def test_cli_unknown_preset_is_one_line_before_reading_data(capsys):
    from tfrec.cli import main

    assert main(["train", "mf", "--preset", "fast", "--data", "/no/such/dir"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tfrec: error: unknown preset 'fast'") and "\n" not in err


def test_cli_preset_and_param_combination_is_checked_before_reading_data(capsys):
    from tfrec.cli import main

    # item_knn's R preset (pearson_baseline) does not go with implicit feedback
    assert main(["train", "item_knn", "--split", "u1", "--param", "feedback=implicit", "--data", "/no/such/dir"]) == 2
    assert "item_knn: similarity must be 'cosine' with feedback='implicit'" in capsys.readouterr().err


# ----------------------------------------------------------------- tfrec models
def test_models_is_a_table_of_every_parameter_and_preset(capsys):
    from tfrec.cli import main
    from tfrec.models.specs import SPECS

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name, spec in SPECS.items():
        assert f"{name}: {spec.description}\n" in out  # the whole sentence
        for key, rule in spec.params.items():
            row = next(line for line in out.splitlines() if line.split()[:1] == [key] and rule.doc in line)
            assert rule.doc in row and rule.unit in row
    assert "  time_half_life   none     None (no time decay) or a number > 0  timestamp units (seconds for MovieLens)" in out
    assert "    T (top-N recommendation): feedback=implicit\n" in out
    assert "    R (rating prediction): feedback=explicit similarity=pearson_baseline rating_form=baseline neighbours=2000 shrinkage=200" in out


def test_models_answers_without_importing_tensorflow():
    code = "import sys; from tfrec.cli import main; main(['models']); assert 'tensorflow' not in sys.modules, 'tensorflow was imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "two_tower: " in result.stdout


# ------------------------------------------------------- ML-100K, the defaults
def _train(ml100k_dir, tmp_path, model: str, split: str) -> dict:
    from tfrec.cli import main

    out = tmp_path / f"{model}-{split}.json"
    argv = ["train", model, "--data", str(ml100k_dir), "--split", split, "--export-dir", str(tmp_path / "sm"), "--logdir", "", "--json", str(out), "-q"]
    assert main(argv) == 0
    assert not (Path.cwd() / "None").exists(), "--logdir '' wrote a TensorBoard run to ./None"
    return json.loads(out.read_text())


def test_mf_with_default_parameters_beats_popularity_on_temporal(ml100k_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mf = _train(ml100k_dir, tmp_path, "mf", "temporal")
    popularity = _train(ml100k_dir, tmp_path, "popularity", "temporal")
    assert popularity["ndcg@10"] == pytest.approx(0.1162, abs=5e-5)
    assert mf["ndcg@10"] > 1.5 * popularity["ndcg@10"]  # explicit mf (no preset) had 0.0495


RMSE_U1 = 0.9319  # preset R on u1; the mean over u1..u5 is the documented 0.9179 (0.9319, 0.9158, 0.9119, 0.9122, 0.9176)


def test_item_knn_with_default_parameters_reaches_its_rating_figure_on_u1(ml100k_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    metrics = _train(ml100k_dir, tmp_path, "item_knn", "u1")
    assert metrics["rmse"] == pytest.approx(RMSE_U1, abs=5e-5)  # --preset none (implicit cosine): 0.9485
