"""`tfrec serve`: TF Serving's REST API (tfrec.serving.rest) over a polled folder of SavedModels (tfrec.serving.registry)."""
from __future__ import annotations

import base64
import json
import shutil
import threading
import time
import warnings

import numpy as np
import pytest

from tfrec._keras import tf
from tfrec.serving.registry import ModelRegistry
from tfrec.serving.rest import Limits, TFServingJSONResponse, create_app, to_json, to_tensor

with warnings.catch_warnings():  # Starlette >= 1.x prefers httpx2 for its TestClient; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PREDICT = "/v1/models/popularity:predict"


# ---------------------------------------------------------------------------- quick: encodings
def test_json_response_writes_non_finite_floats_as_bare_tokens():
    body = TFServingJSONResponse({"scores": [float("-inf"), float("inf"), float("nan"), 1.5], "id": "é"}).body
    assert body == '{"scores":[-Infinity,Infinity,NaN,1.5],"id":"é"}'.encode()


def test_to_tensor_checks_type_shape_and_limits():
    spec = tf.TensorSpec([None, None], tf.string)
    limits = Limits(max_batch=3, max_history=2)
    tensor = to_tensor([["a", {"b64": base64.b64encode(b"\x00z").decode()}], ["", "c"]], spec, "history", limits)
    assert tensor.numpy().tolist() == [[b"a", b"\x00z"], [b"", b"c"]]
    assert to_tensor([[]], spec, "history", limits).shape == (1, 0)
    from tfrec.serving.rest import ApiError

    for value, message in [
        ([["a"], ["b", "c"]], "ragged"), (["a"], "must be an array"), ([[1]], "not of expected type: string"),
        ([["a"]] * 4, "--max-batch"), ([["a", "b", "c"]], "--max-history"), ([[{"b64": "%%"}]], "base64"),
    ]:
        with pytest.raises(ApiError, match=message):
            to_tensor(value, spec, "history", limits)
    with pytest.raises(ApiError, match="int32"):
        to_tensor(2.5, tf.TensorSpec([], tf.int32), "k", limits)
    with pytest.raises(ApiError, match="range"):
        to_tensor(2**40, tf.TensorSpec([], tf.int32), "k", limits)
    assert to_json("item_ids", np.array([[b"a", b"\xff"]], dtype=object)) == [["a", {"b64": "/w=="}]]


# ---------------------------------------------------------------------------- the app on exported demo models
@pytest.fixture(scope="module")
def served_dir(fitted, tmp_path_factory):
    """A folder with popularity (recommend, score) and covisit (also similar_items), one version each."""
    base = tmp_path_factory.mktemp("rest_savedmodels")
    for name in ("popularity", "covisit"):
        _, _, path = fitted.exported(name)
        shutil.copytree(path, base / name / "1")
    return base


@pytest.fixture(scope="module")
def client(served_dir):
    with TestClient(create_app(ModelRegistry(served_dir), Limits(max_batch=8, max_history=6, max_k=2000), poll_seconds=None)) as test_client:
        yield test_client


def _post(client, body, path=PREDICT):
    response = client.post(path, content=body if isinstance(body, (str, bytes)) else json.dumps(body))
    assert response.headers["content-type"].startswith("application/json")
    return response.status_code, response.json()


def _users_items(fitted):
    interactions = fitted.split.train.interactions
    return [str(u) for u in interactions["user_id"].unique()[:3]], [str(i) for i in interactions["item_id"].unique()[:3]]


@pytest.mark.slow
def test_status_and_metadata(client):
    expected = {"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert client.get("/v1/models/popularity").json() == expected
    assert client.get("/V1/Models/popularity/versions/1").json() == expected
    meta = client.get("/v1/models/covisit/versions/1/metadata").json()
    assert meta["model_spec"] == {"name": "covisit", "signature_name": "", "version": "1"}
    defs = meta["metadata"]["signature_def"]["signature_def"]
    assert {"recommend", "score", "similar_items"} <= set(defs)
    recommend = defs["recommend"]
    assert recommend["method_name"] == "tensorflow/serving/predict"
    assert recommend["inputs"]["user_id"] == {"dtype": "DT_STRING", "tensor_shape": {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False},
                                              "name": "recommend_user_id:0"}
    assert recommend["inputs"]["k"]["tensor_shape"] == {"dim": [], "unknown_rank": False}
    assert recommend["inputs"]["k"]["dtype"] == "DT_INT32"
    assert recommend["inputs"]["history"]["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}] * 2
    assert {"dtype": "DT_FLOAT"}.items() <= recommend["outputs"]["scores"].items()
    assert client.get("/v1/models/popularity/metadata").json()["model_spec"]["version"] == "1"


@pytest.mark.slow
def test_predict_columnar_and_row_match_the_savedmodel(client, fitted):
    users, items = _users_items(fitted)
    reference = fitted.exported("popularity")[1]
    history = [[items[0]], [], [items[1], items[2]]]
    padded = [row + [""] * (2 - len(row)) for row in history]
    status, body = _post(client, {"inputs": {"user_id": users, "history": padded, "k": 4}})
    assert status == 200
    ids, scores = reference.recommend(users, history, k=4)
    assert body["outputs"]["item_ids"] == ids.tolist()
    np.testing.assert_array_equal(np.array(body["outputs"]["scores"], np.float32), scores)
    # serving_default and "" mean recommend
    assert _post(client, {"signature_name": "serving_default", "inputs": {"user_id": users, "history": padded, "k": 4}})[1] == body
    # recommend in the row format: k the same in every instance; one prediction object per row
    status, rows = _post(client, {"instances": [{"user_id": u, "history": h, "k": 4} for u, h in zip(users, padded)]})
    assert status == 200
    assert rows == {"predictions": [{"item_ids": i, "scores": s} for i, s in zip(body["outputs"]["item_ids"], body["outputs"]["scores"])]}
    # score, both formats; a single output drops its name (as TF Serving)
    expected = reference.score(users, items).tolist()
    status, columnar = _post(client, {"signature_name": "score", "inputs": {"user_id": users, "item_id": items}})
    assert status == 200 and columnar == {"outputs": pytest.approx(expected)}
    rows = [{"user_id": u, "item_id": {"b64": base64.b64encode(i.encode()).decode()}} for u, i in zip(users, items)]
    status, row = _post(client, {"signature_name": "score", "instances": rows})
    assert status == 200 and row == {"predictions": pytest.approx(expected)}
    # similar_items, columnar
    covisit = fitted.exported("covisit")[1]
    status, similar = _post(client, {"signature_name": "similar_items", "inputs": {"item_id": items[:2], "k": 3}}, "/v1/models/covisit:predict")
    assert status == 200 and similar["outputs"]["item_ids"] == covisit.similar_items(items[:2], k=3)[0].tolist()


@pytest.mark.slow
def test_empty_slots_are_empty_ids_with_minus_infinity(client, fitted):
    n_items = fitted.exported("popularity")[1].n_items
    assert n_items <= 2000
    users, items = _users_items(fitted)
    response = client.post(PREDICT, content=json.dumps({"inputs": {"user_id": [users[0]], "history": [items], "k": n_items}}))
    assert response.status_code == 200 and b"-Infinity" in response.content
    out = json.loads(response.content)["outputs"]
    assert out["item_ids"][0][-1] == "" and out["scores"][0][-1] == float("-inf")


@pytest.mark.slow
@pytest.mark.parametrize(("body", "status", "message"), [
    ("{bad json", 400, "JSON Parse error"),
    ("", 400, "empty"),
    ("[1, 2]", 400, "JSON object"),
    ({"signature_name": "score"}, 400, "Missing 'inputs'"),
    ({"inputs": {}, "instances": []}, 400, "Not both"),
    ({"inputs": {"user_id": ["u"], "history": [[]]}}, 400, "missing input 'k'"),
    ({"inputs": {"user_id": ["u"], "history": [[]], "k": 2, "x": 1}}, 400, "unknown input 'x'"),
    ({"inputs": {"user_id": "u", "history": [[]], "k": 2}}, 400, "user_id must be an array"),
    ({"inputs": {"user_id": ["u"], "history": ["a"], "k": 2}}, 400, "history\\[0\\] must be an array"),
    ({"inputs": {"user_id": [1], "history": [[]], "k": 2}}, 400, "not of expected type: string"),
    ({"inputs": {"user_id": ["u"], "history": [[]], "k": [2]}}, 400, "scalar"),
    ({"inputs": {"user_id": ["u"], "history": [[]], "k": 0}}, 400, "k must be at least 1"),
    ({"inputs": {"user_id": ["u"], "history": [[]], "k": 2001}}, 400, "--max-k"),
    ({"inputs": {"user_id": ["u", "v"], "history": [[]], "k": 2}}, 400, "history must have one row per user_id"),
    ({"inputs": {"user_id": ["u"] * 9, "history": [[]] * 9, "k": 2}}, 400, "--max-batch"),
    ({"inputs": {"user_id": ["u"], "history": [["a"] * 7], "k": 2}}, 400, "--max-history"),
    ({"signature_name": "score", "instances": [{"user_id": "u", "item_id": "i"}] * 9}, 400, "--max-batch"),
    ({"instances": [{"user_id": "u", "history": []}]}, 400, "missing input 'k'"),
    ({"instances": [{"user_id": "u", "history": [], "k": 2}, {"user_id": "v", "history": [], "k": 3}]}, 400, "same value in every row"),
    ({"instances": [{"user_id": "u", "history": [], "k": 3000}]}, 400, "--max-k"),
    ({"signature_name": "score", "instances": [{"user_id": "u"}]}, 400, "missing input 'item_id'"),
    ({"signature_name": "score", "instances": []}, 400, "empty"),
    ({"signature_name": "nope", "inputs": {}}, 400, "not found in signature def"),
    ({"signature_name": 3, "inputs": {}}, 400, "signature_name"),
])
def test_predict_errors(client, body, status, message):
    got_status, got = _post(client, body)
    assert got_status == status, got
    assert set(got) == {"error"} and "\n" not in got["error"]
    assert __import__("re").search(message, got["error"]), got["error"]


def test_request_body_over_the_limit(served_dir):
    with TestClient(create_app(ModelRegistry(served_dir), Limits(max_body_bytes=100), poll_seconds=None)) as small:
        padded = json.dumps({"inputs": {"user_id": ["u"], "history": [["x" * 200]], "k": 2}})
        status, got = _post(small, padded)
        assert status == 400 and "over the limit of 100" in got["error"] and "--max-body-mb" in got["error"]
        assert _post(small, {"inputs": {"user_id": ["u"], "history": [[""]], "k": 2}})[0] == 200


@pytest.mark.slow
def test_unknown_model_version_path_and_classify(client):
    body = {"inputs": {"user_id": ["u"], "history": [[]], "k": 2}}
    assert _post(client, body, "/v1/models/nope:predict")[0] == 404
    assert _post(client, body, "/v1/models/popularity/versions/2:predict")[0] == 404
    assert client.get("/v1/models/popularity/versions/7").status_code == 404
    assert client.get("/v1/models/nope/metadata").status_code == 404
    assert _post(client, body, "/v1/models/popularity/versions/x:predict")[0] == 400
    assert _post(client, body, f"/v1/models/popularity/versions/{2**64}:predict")[0] == 400
    assert client.get("/v1/models").json() == {"error": "Missing model name in request."}
    assert _post(client, body, "/v1/models/popularity:explode")[0] == 400
    status, got = _post(client, {"examples": [{"x": 1.0}]}, "/v1/models/popularity:classify")
    assert status == 400 and "Expected classification signature method_name to be tensorflow/serving/classify" in got["error"]
    status, got = _post(client, {"examples": [{"x": 1.0}]}, "/v1/models/popularity:regress")
    assert status == 400 and "tensorflow/serving/regress" in got["error"]
    assert _post(client, {"examples": []}, "/v1/models/nope:classify")[0] == 404
    assert client.get("/nope").status_code == 404  # "/" is the page (tests/test_web_api.py)


@pytest.mark.slow
def test_registry_skips_broken_and_staging_versions(fitted, tmp_path):
    _, _, path = fitted.exported("popularity")
    model_dir = tmp_path / "popularity"
    shutil.copytree(path, model_dir / "3")
    registry = ModelRegistry(tmp_path)
    registry.poll()
    assert registry.get("popularity").version == 3
    shutil.copytree(path, model_dir / (".tmp-host-1-" + "0" * 32))  # staging: never served
    broken = model_dir / "4"
    (broken / "variables").mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"not a SavedModel")
    (broken / "variables" / "variables.index").write_bytes(b"x")
    registry.poll()
    assert registry.get("popularity").version == 3  # 4 fails to load: 3 keeps serving
    shutil.rmtree(broken)
    shutil.copytree(path, model_dir / "2")
    shutil.rmtree(model_dir / "3")
    registry.poll()
    assert registry.get("popularity").version == 2  # the served version was removed: the newest older one
    shutil.rmtree(model_dir)
    registry.poll()
    assert registry.names() == []


@pytest.mark.slow
def test_rollout_serves_every_request(fitted, tmp_path):
    """Export a new version while requests run: no request fails, and the new version is served after."""
    from tfrec.export import export_model

    _, _, path = fitted.exported("popularity")
    shutil.copytree(path, tmp_path / "popularity" / "1")
    users, _ = _users_items(fitted)
    body = json.dumps({"inputs": {"user_id": users, "history": [[]] * len(users), "k": 3}})
    failures, answered, stop = [], [0], threading.Event()
    with TestClient(create_app(ModelRegistry(tmp_path), poll_seconds=0.1)) as test_client:

        def hammer():
            while not stop.is_set():
                response = test_client.post(PREDICT, content=body)
                if response.status_code != 200:
                    failures.append(response.text)
                answered[0] += 1

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)
            new = export_model(fitted.model("popularity"), tmp_path)
            assert new.name == "2"
            deadline = time.monotonic() + 20
            while test_client.get("/v1/models/popularity").json()["model_version_status"][0]["version"] != "2":
                assert time.monotonic() < deadline, "version 2 was not picked up"
                time.sleep(0.1)
            time.sleep(0.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert not failures, failures[:3]
        assert answered[0] > 10
        assert test_client.get("/v1/models/popularity/versions/1").status_code == 404
        assert test_client.post("/v1/models/popularity/versions/2:predict", content=body).status_code == 200


def test_serve_command_refuses_a_missing_folder_and_bad_limits(tmp_path, capsys):
    from tfrec.cli import main

    assert main(["serve", str(tmp_path / "missing")]) == 2
    assert main(["serve", str(tmp_path), "--max-k", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "not a folder" in err[0] and "--max-k must be at least 1" in err[1]


@pytest.mark.slow
def test_serve_command_answers_over_http(served_dir, fitted):
    """`tfrec serve` in a subprocess: uvicorn on 127.0.0.1, raw -Infinity tokens on the wire."""
    import urllib.error
    import urllib.request

    from tfrec.serving.child_process import running_server

    with running_server(served_dir, "--models", "popularity", ready_path="/v1/models/popularity") as url:
        base = f"{url}/v1/models"
        with urllib.request.urlopen(f"{base}/popularity", timeout=5) as response:
            assert json.loads(response.read())["model_version_status"][0]["version"] == "1"
        users, items = _users_items(fitted)
        n_items = fitted.exported("popularity")[1].n_items
        request = urllib.request.Request(f"{base}/popularity:predict", method="POST",
                                         data=json.dumps({"inputs": {"user_id": users[:1], "history": [items], "k": n_items}}).encode())
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
        assert b"-Infinity" in raw and json.loads(raw)["outputs"]["scores"][0][-1] == float("-inf")
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(f"{base}/covisit", timeout=5)  # not in --models
        assert error.value.code == 404 and "error" in json.loads(error.value.read())


@pytest.mark.slow
def test_a_slow_request_does_not_hold_up_others(served_dir, fitted):
    """TensorFlow work runs in worker threads: a fast request answers while a slow one is in flight."""
    registry = ModelRegistry(served_dir, ["popularity"])
    users, items = _users_items(fitted)
    with TestClient(create_app(registry, poll_seconds=None)) as test_client:
        loaded = registry.get("popularity")
        score, started, release = loaded.functions["score"], threading.Event(), threading.Event()

        def slow_score(**inputs):
            started.set()
            release.wait(10)
            return score(**inputs)

        loaded.functions["score"] = slow_score
        slow_body = json.dumps({"signature_name": "score", "inputs": {"user_id": users, "item_id": items}})
        slow = []
        thread = threading.Thread(target=lambda: slow.append(test_client.post(PREDICT, content=slow_body)))
        thread.start()
        try:
            assert started.wait(10)
            fast = test_client.post(PREDICT, content=json.dumps({"inputs": {"user_id": users, "history": [[]] * len(users), "k": 2}}))
            assert fast.status_code == 200 and not slow  # answered while the slow request still runs
            assert test_client.get(PREDICT).status_code == 400  # GET on a :predict path: malformed, as TF Serving
        finally:
            release.set()
            thread.join()
            loaded.functions["score"] = score
        assert slow[0].status_code == 200
