"""A synthetic MovieLens-like dataset of any size, for scale tests and benchmarks.

Everything is vectorised numpy on int32 indices (per-row work runs in blocks of 1M rows);
ids become strings only at the end, by taking from a small vocabulary of id strings, so
every row of an id column points at one shared Python ``str`` (8 bytes a row, not a new
string per row). ``tfrec bench --scale 1M,5M,20M --models none`` measures its time and
memory (every scale run reports them).

The generative story:

- items: a category each (uniform), a popularity rank (a random permutation of the ids)
  with Zipf-Mandelbrot weights ``(rank + 1 + ZIPF_OFFSET * n_items) ** -ZIPF_EXPONENT``
  (the offset flattens the head: the top 1% of items get about 6% of the interactions
  and the top 10% about 35-40%, near MovieLens 100K's 7% and 43%), and a quality bias;
- users: a favourite category each (uniform), an activity level from a lognormal
  (``sigma = ACTIVITY_SIGMA``), at least ``min(5, n_interactions // n_users)`` and at
  most a quarter of the catalog;
- each interaction: an item of the user's favourite category with probability
  ``min(TASTE_SHARE, 0.5 * category size / user's count)`` (heavy users spread out
  instead of exhausting their category), else any item, both drawn by popularity
  (Walker alias tables); a (user, item) pair appears at most once (see `_draw_pairs`);
- rating: round(3 + [item in favourite category] + user bias + item bias + noise),
  clipped to 1..5;
- time: each user starts at a uniform time in three years from 2020-01-01; the gap to
  the next interaction is, with probability ``1 / MEAN_SESSION_LENGTH``, a new-session
  gap (exponential, mean 3 days), else an in-session gap (1 s + exponential, mean 90 s);
- sessions: each user's time-ordered interactions cut where the gap exceeds 30 minutes.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tfrec.data.dataset import DataError, Dataset

ZIPF_EXPONENT = 1.2
ZIPF_OFFSET = 0.05  # of the catalog size; flattens the head like real rating data
ACTIVITY_SIGMA = 1.1
TASTE_SHARE = 0.6
MEAN_SESSION_LENGTH = 8
SESSION_GAP_S = 30 * 60
START_TIME = 1_577_836_800  # 2020-01-01 UTC
TIME_SPAN_S = 3 * 365 * 86_400
MAX_DENSITY = 0.05  # default sizes keep interactions <= 5% of users x items
_MAX_ROUNDS = 12
_POPULAR_ROUNDS = 1
_BLOCK = 1 << 20  # rows per block in the per-row loops
MAX_USER_SHARE = 4  # a user rates at most 1/4 of the catalog

CATEGORY_WORDS: dict[str, list[str]] = {
    "action": ["action", "fast", "adventure", "hero", "chase", "battle"],
    "romance": ["romance", "love", "drama", "heart", "kiss", "wedding"],
    "scifi": ["scifi", "space", "future", "alien", "robot", "planet"],
    "comedy": ["comedy", "funny", "joke", "laugh", "silly", "prank"],
    "horror": ["horror", "scary", "ghost", "dark", "haunted", "blood"],
    "documentary": ["documentary", "history", "facts", "nature", "science", "real"],
    "thriller": ["thriller", "spy", "suspense", "twist", "danger", "secret"],
    "fantasy": ["fantasy", "magic", "dragon", "wizard", "quest", "kingdom"],
    "animation": ["animation", "cartoon", "colorful", "kids", "talking", "animals"],
    "crime": ["crime", "heist", "detective", "gang", "police", "murder"],
    "western": ["western", "cowboy", "desert", "sheriff", "horse", "outlaw"],
    "musical": ["musical", "song", "dance", "stage", "singer", "band"],
    "war": ["war", "soldier", "army", "battlefield", "courage", "front"],
    "sports": ["sports", "team", "coach", "match", "champion", "training"],
    "mystery": ["mystery", "clue", "puzzle", "missing", "riddle", "whodunit"],
    "family": ["family", "home", "parents", "holiday", "siblings", "friendship"],
    "biography": ["biography", "life", "famous", "true", "legacy", "portrait"],
    "noir": ["noir", "shadow", "smoke", "femme", "rain", "city"],
    "teen": ["teen", "school", "prom", "friends", "summer", "first"],
    "disaster": ["disaster", "storm", "earthquake", "flood", "rescue", "survival"],
}


def default_sizes(n_interactions: int) -> tuple[int, int]:
    """MovieLens-20M-like users and items for ``n_interactions``.

    ``n_users = max(10, round(n / 145))``, ``n_items = max(10, round(n / 740))``, then
    items grow so that the density stays at most 5% (small sizes would otherwise ask a
    handful of users to rate more items than exist): below about 2.1M interactions this
    gives 2,900 items.
    """
    n = int(n_interactions)
    n_users = max(10, round(n / 145))
    n_items = max(10, round(n / 740), int(np.ceil(n / (MAX_DENSITY * n_users))))
    return n_users, n_items


def _category_names(n_categories: int) -> list[str]:
    names = list(CATEGORY_WORDS)[:n_categories]
    return names + [f"category{c}" for c in range(len(names), n_categories)]


def _category_words(name: str) -> list[str]:
    return CATEGORY_WORDS.get(name) or [f"{name}w{k}" for k in range(6)]


def _activity(rng: np.random.Generator, n: int, n_users: int, cap: int) -> np.ndarray:
    """Interactions per user: lognormal shares of ``n``, clipped to [floor, cap], summing to n."""
    floor = min(5, n // n_users, cap)
    weights = rng.lognormal(0.0, ACTIVITY_SIGMA, n_users)
    counts = np.full(n_users, float(floor))
    free = np.ones(n_users, dtype=bool)
    for _ in range(50):  # water-filling: users at the cap keep it, others share the rest
        budget = n - counts[~free].sum() - floor * free.sum()
        counts[free] = floor + budget * weights[free] / weights[free].sum()
        over = free & (counts > cap)
        if not over.any():
            break
        counts[over] = cap
        free &= ~over
    whole = np.minimum(np.floor(counts), cap).astype(np.int64)
    short = n - int(whole.sum())
    if short > 0:  # largest remainders first, ties by user index
        room = np.flatnonzero(whole < cap)
        order = room[np.argsort(-(counts[room] - whole[room]), kind="stable")]
        whole[order[:short]] += 1
    return whole


def _alias_table(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker's alias table for sampling ``i`` with probability ``weight[i] / weight.sum()``.

    Draw ``j`` uniform in ``[0, n)`` and ``f`` uniform in ``[0, 1)``; the sample is ``j``
    when ``f < keep[j]``, else ``alias[j]`` (Vose's construction, a loop over the items).
    """
    n = len(weight)
    scaled = (weight * (n / weight.sum())).tolist()
    keep = np.ones(n)
    alias = np.arange(n)
    small = [i for i, w in enumerate(scaled) if w < 1.0]
    large = [i for i, w in enumerate(scaled) if w >= 1.0]
    while small and large:
        s, big = small.pop(), large.pop()
        keep[s], alias[s] = scaled[s], big
        scaled[big] -= 1.0 - scaled[s]
        (small if scaled[big] < 1.0 else large).append(big)
    return keep, alias


class _ItemSampler:
    """Draws item indices by popularity, from the whole catalog or from one category.

    One alias table per category plus one for the whole catalog, laid end to end (slot
    ``start[c] .. start[c] + size[c]``; the last range is the whole catalog), so every
    draw is two uniforms and two gathers, whatever the catalog size.
    """

    def __init__(self, rng: np.random.Generator, category: np.ndarray, n_categories: int) -> None:
        n_items = len(category)
        rank = rng.permutation(n_items)
        weight = (rank + 1.0 + ZIPF_OFFSET * n_items) ** -ZIPF_EXPONENT
        groups = [np.flatnonzero(category == c) for c in range(n_categories)] + [np.arange(n_items)]
        keep, alias, item = [], [], []
        for members in groups:
            k, a = _alias_table(weight[members]) if len(members) else (np.ones(0), np.zeros(0, np.int64))
            keep.append(k)
            alias.append(members[a])
            item.append(members)
        self.size = np.array([len(g) for g in groups], dtype=np.int64)
        self.start = np.concatenate(([0], np.cumsum(self.size)[:-1]))
        self.keep = np.concatenate(keep)
        self.alias = np.concatenate(alias).astype(np.int32)
        self.item = np.concatenate(item).astype(np.int32)
        self.everything = n_categories  # the group index of the whole catalog

    def draw(self, rng: np.random.Generator, users: np.ndarray, favourite: np.ndarray, taste: np.ndarray) -> np.ndarray:
        """One item per entry of ``users``: from the user's favourite category with the user's
        ``taste`` probability, else from the whole catalog (both by popularity).

        Works in blocks of ``_BLOCK`` rows so the temporaries stay small and are reused.
        """
        out = np.empty(len(users), dtype=np.int32)
        for lo in range(0, len(users), _BLOCK):
            u = users[lo : lo + _BLOCK]
            n = len(u)
            group = np.where(rng.random(n, dtype=np.float32) < taste[u], favourite[u], self.everything)
            size = self.size[group]
            if not size.all():  # a favourite category without items: draw from all
                group[size == 0] = self.everything
                size = self.size[group]
            x = rng.random(n) * size
            slot = x.astype(np.int64)
            x -= slot
            slot += self.start[group]
            out[lo : lo + n] = np.where(x < self.keep[slot], self.item[slot], self.alias[slot])
        return out


def _draw_pairs(
    rng: np.random.Generator,
    target: np.ndarray,
    sampler: _ItemSampler,
    favourite: np.ndarray,
    taste: np.ndarray,
    n_items: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) pairs, ``target[u]`` per user where the rounds allow it.

    Round 1 draws exactly ``target`` items per user and drops repeated pairs; each later
    round redraws 1.5x, 3x, 6x, ... (at most 24x) the shortfall (+2) for the users still
    short, drops pairs already held or repeated, and keeps the first ``shortfall`` fresh
    draws of each user. After ``_POPULAR_ROUNDS`` popularity round(s) the draws are
    uniform over the catalog: the few users still short hold most of what popularity
    offers them and reach into the long tail. Returns int32 arrays grouped by user (users ascending), items in draw
    order within a user.
    """
    n_users = len(target)
    users = np.repeat(np.arange(n_users, dtype=np.int32), target)
    items = sampler.draw(rng, users, favourite, taste)
    key = users.astype(np.int64) * n_items + items
    order = np.argsort(key, kind="stable")  # fast: keys are already grouped by user
    key = key[order]
    repeat = key[1:] == key[:-1]
    first = np.ones(len(key), dtype=bool)
    first[order[1:][repeat]] = False  # later draws of a pair
    held = key[np.concatenate(([True], ~repeat))]  # sorted keys of the pairs kept
    del key, order, repeat
    users, items = users[first], items[first]
    del first
    extra_users, extra_items = [users], [items]
    have = np.bincount(users, minlength=n_users)
    for round_ in range(_MAX_ROUNDS):
        short = target - have
        if not short.any():
            break
        factor = 1.5 * 2 ** min(round_, 4)
        draw = np.where(short > 0, np.ceil(short * factor).astype(np.int64) + 2, 0)
        new_u = np.repeat(np.arange(n_users, dtype=np.int32), draw)
        if round_ < _POPULAR_ROUNDS:
            new_i = sampler.draw(rng, new_u, favourite, taste)
        else:
            new_i = rng.integers(0, n_items, len(new_u), dtype=np.int32)
        new_key = new_u.astype(np.int64) * n_items + new_i
        # fresh = not held and the first draw of its pair; sorted queries keep this fast
        order = np.argsort(new_key, kind="stable")
        sorted_key = new_key[order]
        pos = np.minimum(np.searchsorted(held, sorted_key), len(held) - 1)
        fresh_sorted = held[pos] != sorted_key
        fresh_sorted[1:] &= sorted_key[1:] != sorted_key[:-1]
        fresh = np.empty_like(fresh_sorted)
        fresh[order] = fresh_sorted
        new_u, new_i = new_u[fresh], new_i[fresh]
        # keep the first `short[u]` fresh draws of each user (new_u is grouped by user)
        run_start = np.flatnonzero(np.concatenate(([True], new_u[1:] != new_u[:-1])))
        rank = np.arange(len(new_u)) - np.repeat(run_start, np.diff(np.append(run_start, len(new_u))))
        keep = rank < short[new_u]
        new_u, new_i = new_u[keep], new_i[keep]
        have += np.bincount(new_u, minlength=n_users)
        if (have < target).any():  # another round follows: it must see these pairs
            added = np.sort(new_u.astype(np.int64) * n_items + new_i)
            held = np.insert(held, np.searchsorted(held, added), added)
        extra_users.append(new_u)
        extra_items.append(new_i)
    if len(extra_users) == 1:
        return users, items
    users = np.concatenate(extra_users)
    order = np.argsort(users, kind="stable")  # merges a few sorted runs
    return users[order], np.concatenate(extra_items)[order]


def _id_column(vocabulary: pd.Index, codes: np.ndarray) -> pd.Series:
    """A str column whose rows share the vocabulary's string objects (8 bytes a row)."""
    return pd.Series(vocabulary.take(codes), copy=False)


def make_synthetic(
    n_interactions: int,
    n_users: int | None = None,
    n_items: int | None = None,
    n_categories: int = 20,
    seed: int = 0,
) -> Dataset:
    """A deterministic synthetic `Dataset` (see the module docstring for the model).

    ``n_users`` / ``n_items`` default to `default_sizes`. Ids are "1".."n_users" and
    "1".."n_items" (numeric strings, like MovieLens). Interactions are sorted by user,
    then time; ratings are whole numbers 1..5 (float32); timestamps are Unix seconds,
    strictly increasing within a user. Sessions share the interactions' rows and order.

    Pairs are unique; repeated draws are redrawn, so the count is ``n_interactions``
    exactly unless the redraw rounds give up (possible only for very dense custom sizes;
    ``len(data.interactions)`` is the actual count). Raises DataError when the request
    cannot fit (``n_interactions > n_users * (n_items // 4)``).
    """
    n = int(n_interactions)
    if n < 1:
        raise DataError(f"synthetic: n_interactions must be positive, got {n_interactions!r}")
    default_users, default_items = default_sizes(n)
    n_users = default_users if n_users is None else int(n_users)
    n_items = default_items if n_items is None else int(n_items)
    if n_users < 1 or n_items < 1 or n_categories < 1:
        raise DataError(
            f"synthetic: n_users, n_items and n_categories must be positive (got {n_users}, {n_items}, {n_categories})"
        )
    cap = max(1, n_items // MAX_USER_SHARE)
    if n > n_users * cap:
        raise DataError(
            f"synthetic: {n:,} interactions do not fit {n_users:,} users x {n_items:,} items "
            f"(each user rates at most a quarter of the catalog, {cap:,}); ask for at most {n_users * cap:,} "
            "or pass larger n_users / n_items"
        )
    rng = np.random.default_rng(seed)

    # items and users
    item_category = rng.integers(0, n_categories, n_items).astype(np.int32)
    item_bias = rng.normal(0.0, 0.5, n_items).astype(np.float32)
    sampler = _ItemSampler(rng, item_category, n_categories)
    favourite = rng.integers(0, n_categories, n_users).astype(np.int32)
    user_bias = rng.normal(0.0, 0.4, n_users).astype(np.float32)
    target = _activity(rng, n, n_users, cap)
    # heavy users spread out: favourite-category draws stay under half that category
    category_size = np.bincount(item_category, minlength=n_categories)[favourite]
    taste = np.minimum(TASTE_SHARE, 0.5 * category_size / np.maximum(target, 1)).astype(np.float32)

    users, items = _draw_pairs(rng, target, sampler, favourite, taste, n_items)
    m = len(users)

    # ratings and time gaps, block by block
    rating = np.empty(m, dtype=np.float32)
    gap = np.empty(m, dtype=np.int64)
    scale = np.array([90.0, 3 * 86_400.0], dtype=np.float32)  # in-session, new-session mean gap (s)
    for lo in range(0, m, _BLOCK):
        u, i = users[lo : lo + _BLOCK], items[lo : lo + _BLOCK]
        score = (item_category[i] == favourite[u]).astype(np.float32)
        score += user_bias[u] + item_bias[i] + rng.standard_normal(len(u), dtype=np.float32) * np.float32(0.9) + 3
        rating[lo : lo + len(u)] = np.clip(np.rint(score), 1, 5)
        new_session = rng.random(len(u), dtype=np.float32) < 1.0 / MEAN_SESSION_LENGTH
        wait = rng.standard_exponential(len(u), dtype=np.float32) * scale[new_session.view(np.int8)]
        gap[lo : lo + len(u)] = wait.astype(np.int64) + 1
    del score, wait

    # times and sessions (rows are grouped by user)
    counts = np.bincount(users, minlength=n_users)
    user_start = np.concatenate(([0], np.cumsum(counts)[:-1]))
    first_row = np.zeros(m, dtype=bool)
    first_row[user_start[counts > 0]] = True
    gap[first_row] = 0
    elapsed = np.cumsum(gap)
    elapsed -= np.repeat(elapsed[user_start[counts > 0]], counts[counts > 0])
    timestamp = rng.integers(START_TIME, START_TIME + TIME_SPAN_S, n_users)[users] + elapsed
    del elapsed
    session_start = first_row | (gap > SESSION_GAP_S)
    del gap, first_row
    session_id = np.cumsum(session_start, dtype=np.int64) - 1
    starts = np.flatnonzero(session_start)
    position = (np.arange(m, dtype=np.int64) - starts[session_id]).astype(np.int32)
    del starts, session_start

    # strings, once per id, shared by every row
    user_vocab = pd.Index(np.arange(1, n_users + 1).astype(str).astype(object), dtype="str")
    item_vocab = pd.Index(np.arange(1, n_items + 1).astype(str).astype(object), dtype="str")
    user_col = _id_column(user_vocab, users)
    item_col = _id_column(item_vocab, items)
    del users, items
    ts_col = pd.Series(timestamp, copy=False)
    interactions = pd.DataFrame(
        {"user_id": user_col, "item_id": item_col, "rating": rating, "timestamp": ts_col}, copy=False
    )
    sessions = pd.DataFrame(
        {"session_id": session_id, "user_id": user_col, "item_id": item_col, "position": position, "timestamp": ts_col},
        copy=False,
    )
    return Dataset(
        interactions=interactions,
        items=_catalog(rng, item_vocab, item_category, n_categories),
        sessions=sessions,
        name=f"synthetic-{n}",
    )


def _catalog(
    rng: np.random.Generator, item_vocab: pd.Index, item_category: np.ndarray, n_categories: int
) -> pd.DataFrame:
    """Items with a category name, a two-word title and a ten-word description from its word list."""
    names = _category_names(n_categories)
    words = np.array([_category_words(name) for name in names], dtype=object)  # [C, 6]
    picks = rng.integers(0, words.shape[1], (len(item_category), 12))
    chosen = words[item_category[:, None], picks]
    ids = item_vocab.to_numpy()
    titles = [f"{a.title()} {b.title()} {i}" for a, b, i in zip(chosen[:, 0], chosen[:, 1], ids)]
    texts = [" ".join(row) for row in chosen[:, 2:].tolist()]
    return pd.DataFrame(
        {
            "item_id": ids,
            "title": np.array(titles, dtype=object),
            "text": np.array(texts, dtype=object),
            "category": np.array(names, dtype=object)[item_category],
        }
    )
