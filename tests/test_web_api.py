"""`tfrec serve`'s tfrec-only endpoints (/tfrec/v1/...) and the page it serves at / (tfrec/serving/static)."""
from __future__ import annotations

import fnmatch
import shutil
import tomllib
import warnings
from pathlib import Path

import pytest

from tfrec.serving.registry import LoadedVersion, ModelRegistry
from tfrec.serving.rest import STATIC_DIR, AssetCache, create_app

with warnings.catch_warnings():  # Starlette >= 1.x prefers httpx2 for its TestClient; httpx still works
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- quick
def test_static_files_are_package_data():
    """Every file the page needs is matched by pyproject's package-data, so an installed tfrec has it."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["tfrec.serving"]
    files = sorted(path.relative_to(STATIC_DIR.parent).as_posix() for path in STATIC_DIR.iterdir())
    assert {"static/index.html", "static/app.js", "static/style.css"} <= set(files)
    for name in files:
        assert any(fnmatch.fnmatch(name, pattern) for pattern in patterns), f"{name} is not package data"
    page = (STATIC_DIR / "index.html").read_text()
    assert "http://" not in page and "https://" not in page  # no CDN, no external fonts


def test_asset_cache_reads_once_per_loaded_version(tmp_path):
    reads = []

    def read(loaded):
        reads.append(loaded.version)
        return f"catalog of {loaded.version}"

    cache = AssetCache()
    first = LoadedVersion("m", 1, tmp_path, {}, {}, {})
    assert cache.get(first, "catalog", read) == cache.get(first, "catalog", read) == "catalog of 1"
    second = LoadedVersion("m", 2, tmp_path, {}, {}, {})
    assert cache.get(second, "catalog", read) == "catalog of 2"
    assert cache.get(first, "meta", read) == "catalog of 1"  # another kind: its own entry
    assert reads == [1, 2, 1]


# ---------------------------------------------------------------------------- the app on exported demo models
@pytest.fixture(scope="module")
def served_dir(fitted, tmp_path_factory):
    base = tmp_path_factory.mktemp("web_savedmodels")
    for name, version in (("popularity", "2"), ("covisit", "1")):
        _, _, path = fitted.exported(name)
        shutil.copytree(path, base / name / version)
    return base


@pytest.fixture(scope="module")
def client(served_dir):
    with TestClient(create_app(ModelRegistry(served_dir), poll_seconds=None)) as test_client:
        yield test_client


@pytest.mark.slow
def test_model_list(client, fitted):
    body = client.get("/tfrec/v1/models").json()
    assert [m["name"] for m in body["models"]] == ["covisit", "popularity"]
    assert body["limits"] == {"max_batch": 1024, "max_history": 1000, "max_k": 1000}
    covisit, popularity = body["models"]
    reference = fitted.exported("popularity")[1]
    assert popularity["version"] == "2" and popularity["model"] == "popularity"
    assert (popularity["n_users"], popularity["n_items"]) == (reference.metadata["n_users"], reference.metadata["n_items"])
    assert popularity["config"] == reference.metadata["config"]
    assert popularity["trained_on"] == reference.trained_on.to_dict() and popularity["trained_on"]["data"] == fitted.split.train.name
    assert popularity["similar_items"] is False and popularity["signatures"] == ["recommend", "score"]
    assert covisit["similar_items"] is True and "similar_items" in covisit["signatures"] and covisit["version"] == "1"


@pytest.mark.slow
def test_catalog_search(client, fitted):
    catalog = fitted.exported("popularity")[1].catalog
    title = next(t for t in catalog["title"] if len(t) >= 6)
    query = title[1:5].swapcase()  # case-insensitive substring
    body = client.get("/tfrec/v1/models/popularity/catalog", params={"q": query, "limit": 1000}).json()
    expected = [(i, t) for i, t in zip(catalog["item_id"], catalog["title"]) if query.casefold() in f"{i}\n{t}".casefold()]
    assert body["name"] == "popularity" and body["version"] == "2" and body["query"] == query
    assert [(item["item_id"], item["title"]) for item in body["items"]] == expected and body["matches"] == len(expected)
    assert title in [item["title"] for item in body["items"]]
    item_id = catalog["item_id"].iloc[0]  # ids match too
    assert item_id in [item["item_id"] for item in client.get(f"/tfrec/v1/models/popularity/catalog?q={item_id}").json()["items"]]
    limited = client.get("/tfrec/v1/models/popularity/catalog?limit=3").json()  # no q: every item
    assert len(limited["items"]) == 3 and limited["matches"] == len(catalog)
    assert client.get("/tfrec/v1/models/popularity/catalog?q=no-such-title-anywhere").json()["items"] == []
    assert len(client.get("/tfrec/v1/models/popularity/catalog").json()["items"]) == min(20, len(catalog))  # default limit


@pytest.mark.slow
@pytest.mark.parametrize(("path", "status", "message"), [
    ("/tfrec/v1/models/nope/catalog?q=a", 404, "Servable not found"),
    ("/tfrec/v1/models/nope/titles?id=1", 404, "Servable not found"),
    ("/tfrec/v1/models/popularity/catalog?limit=0", 400, "limit must be an integer from 1 to 1000"),
    ("/tfrec/v1/models/popularity/catalog?limit=1001", 400, "limit"),
    ("/tfrec/v1/models/popularity/catalog?limit=x", 400, "limit"),
    ("/tfrec/v1/models/popularity/catalog?limit=-1", 400, "limit"),
    ("/tfrec/v1/models/popularity/catalog?q=a&q=b", 400, "'q' given 2 times"),
    ("/tfrec/v1/models/popularity/titles", 400, "repeated query parameters"),
    ("/tfrec/v1/models/popularity/bogus", 400, "Malformed request"),
    ("/tfrec/v2/models", 400, "Malformed request"),
    ("/static/nope.js", 404, "Not found"),
    ("/static/..%2Frest.py", 404, "Not found"),
    ("/static/.hidden.css", 404, "Not found"),
])
def test_errors(client, path, status, message):
    response = client.get(path)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and message in body["error"] and "\n" not in body["error"]


@pytest.mark.slow
def test_titles_and_a_post_to_a_tfrec_path(client, fitted):
    catalog = fitted.exported("popularity")[1].catalog
    ids = catalog["item_id"].tolist()[:2]
    body = client.get("/tfrec/v1/models/popularity/titles", params=[("id", ids[1]), ("id", "no-such-item"), ("id", ids[0])]).json()
    titles = dict(zip(catalog["item_id"], catalog["title"]))
    assert body["items"] == [{"item_id": ids[1], "title": titles[ids[1]]}, {"item_id": "no-such-item", "title": None},
                             {"item_id": ids[0], "title": titles[ids[0]]}]
    response = client.post("/tfrec/v1/models", content="{}")
    assert response.status_code == 400 and "error" in response.json()


@pytest.mark.slow
def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="static/app.js"' in page.text and 'href="static/style.css"' in page.text
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css"), ("index.html", "text/html")):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
        assert response.content == (STATIC_DIR / name).read_bytes()
    script = client.get("/static/app.js").text
    assert "tfrec/v1/models" in script and ":predict" in script  # the page is a client of the public API
