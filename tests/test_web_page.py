"""The page of `tfrec serve` in a real browser: headless Chromium loads / with query parameters,
the page runs the query through the REST API, and the dumped DOM holds the recommended titles."""
from __future__ import annotations

import html
import shutil
import subprocess

import pytest

from tfrec.serving.child_process import running_server


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("chromium not installed: apt-get install chromium")
    return path


def _dump_dom(chromium: str, url: str) -> str:
    result = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", "--virtual-time-budget=10000", url],
                            capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result.stdout.decode()


@pytest.fixture(scope="module")
def server(fitted, tmp_path_factory):
    """`tfrec serve` in a subprocess on a free 127.0.0.1 port, serving the demo popularity model."""
    base = tmp_path_factory.mktemp("page_savedmodels")
    shutil.copytree(fitted.exported("popularity")[2], base / "popularity" / "1")
    with running_server(base) as url:
        yield url


@pytest.mark.slow
def test_page_shows_a_users_recommendations(server, fitted):
    chromium = _chromium()
    reference = fitted.exported("popularity")[1]
    user = str(fitted.split.train.interactions["user_id"].iloc[0])
    ids, _ = reference.recommend([user], k=5)
    titles = [reference.title(item) for item in ids[0] if item]
    assert len(titles) == 5 and all(titles)
    dom = _dump_dom(chromium, f"{server}/?models=popularity&user={user}&k=5")
    ranked = dom[dom.index('class="recs"'):]
    positions = [ranked.find(html.escape(title, quote=False)) for title in titles]
    assert all(position >= 0 for position in positions), (titles, ranked[:3000])
    assert positions == sorted(positions)  # best first
    assert dom.count('class="rank"') == 5
    assert 'role="alert">' not in dom  # no visible error (the form's error line stays hidden)


@pytest.mark.slow
def test_page_shows_api_errors(server):
    chromium = _chromium()
    dom = _dump_dom(chromium, f"{server}/?models=popularity&user=u&k=5000")  # over --max-k
    assert 'class="error" role="alert">400: k = 5000 is over the limit of 1000 (--max-k)<' in dom
