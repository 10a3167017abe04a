"""The notebook's toy dataset, kept bit-for-bit, and its conversion to a `Dataset`.

`make_demo_data` is a faithful copy of ``make_demo_data`` from the seed notebook
(``shared/seed/recommender_notebook.txt``): same code path, same ``RandomState`` call
order, so the default call gives the same 358 ratings the notebook printed.
`load_demo` turns its output into the canonical `Dataset` with string ids.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tfrec.data.dataset import Dataset, normalise_interactions


def make_demo_data(
    n_users: int = 30,
    n_items: int = 60,
    n_categories: int = 6,
    ratings_per_user: int = 12,
    session_len: int = 8,
    seed: int = 42,
) -> tuple[pd.DataFrame, list[np.ndarray], pd.DataFrame, dict[int, str]]:
    """
    Creates a toy dataset that behaves like a real recommendation dataset.

    Users:
      - each user prefers one category

    Items:
      - each item belongs to one category
      - each item has a text description (category-specific keywords)

    Ratings:
      - user gives higher ratings to items in their preferred category

    Sessions:
      - implicit sequences of interacted items (mostly from preferred category)

    Returns ``(ratings_df, sessions, items_df, item_text)`` exactly as the notebook:
    ``ratings_df`` columns user_id (int), item_id (int), rating (float, 1 decimal);
    ``sessions`` one int array of ``session_len`` item ids per user; ``items_df``
    columns item_id, title, category; ``item_text`` {item index: description}.
    Only 6 categories have word lists, so ``n_categories`` must be at most 6.
    """

    rng = np.random.RandomState(seed)

    # Assign each iteam a category ID
    item_category = rng.randint(0, n_categories, size=n_items)

    # Assign each user a preferred category
    user_pref = rng.randint(0, n_categories, size=n_users)

    # Words to generate item descriptions per category
    category_words = {
        0: ["action", "fast", "adventure", "hero"],
        1: ["romance", "love", "drama", "heart"],
        2: ["scifi", "space", "future", "alien"],
        3: ["comedy", "funny", "joke", "laugh"],
        4: ["horror", "scary", "ghost", "dark"],
        5: ["documentary", "history", "facts", "nature"],
    }

    # Create item text and titles
    item_text: dict[int, str] = {}
    item_title: dict[int, str] = {}
    for i in range(n_items):
        category = int(item_category[i])
        words = category_words[category]

        desc = " ".join(rng.choice(words, size=10, replace=True))

        item_text[i] = desc
        item_title[i] = f"Item_{i:02d}_Category_{category:02d}"

    # Build ratings as a list of (user_id,item_id,rating)
    ratings: list[tuple[int, int, float]] = []
    for u in range(n_users):
        # Items in user's preferred category
        preferred_items = np.where(item_category == user_pref[u])[0]

        # Items Not in preferred category
        other_items = np.where(item_category != user_pref[u])[0]

        # Choose ~70% from preferred and ~30% from others
        n_pref = int(ratings_per_user * 0.7)
        n_other = ratings_per_user - n_pref

        # Choose without replacement
        chosen_pref = rng.choice(preferred_items, size=min(n_pref, len(preferred_items)), replace=False)
        chosen_other = rng.choice(other_items, size=min(n_other, len(other_items)), replace=False)

        chosen = np.concatenate((chosen_pref, chosen_other))
        rng.shuffle(chosen)

        for item_id in chosen:
            # Base rating is higher if matches preference
            base = 4.2 if item_category[item_id] == user_pref[u] else 2.8

            # Add Gaussian noise and clip into [1...5]
            r = np.clip(rng.normal(base, 0.6), 1.0, 5.0)

            # Round to 0.1 to look more realistic
            ratings.append((u, int(item_id), float(np.round(r, 1))))

    # Build the sessions ( view/click sequences)

    sessions: list[np.ndarray] = []

    for u in range(n_users):
        # sample from preferred category with replacement ( views  can repeat )
        pref_items = np.where(item_category == user_pref[u])[0]
        session = rng.choice(pref_items, size=session_len, replace=True)
        sessions.append(session)

    # Item metadata table
    items_df = pd.DataFrame(
        {
            "item_id": np.arange(n_items),
            "title": [item_title[i] for i in range(n_items)],
            "category": item_category,
        }
    )

    # Ratings dataframe
    ratings_df = pd.DataFrame(ratings, columns=["user_id", "item_id", "rating"])

    return ratings_df, sessions, items_df, item_text


def load_demo(**kwargs) -> Dataset:
    """The demo data as a `Dataset` named "demo" (keyword arguments go to `make_demo_data`).

    - interactions: ids are the notebook's integers as str, rating float32, and
      ``timestamp`` is the row order 0..n-1 (the generator has no time).
    - items: ``text`` is the generated description, ``category`` the category index as str.
    - sessions: one session per user, ``session_id`` = user index, ``position`` and
      ``timestamp`` both the 0-based position within the session. These are the
      notebook's separate view sequences, not the rated items.
    """
    ratings_df, sessions, items_df, item_text = make_demo_data(**kwargs)

    interactions = normalise_interactions(
        ratings_df.assign(timestamp=np.arange(len(ratings_df), dtype=np.int64))
    )
    items = pd.DataFrame(
        {
            "item_id": items_df["item_id"].astype(str).to_numpy(dtype=object),
            "title": items_df["title"].astype(str).to_numpy(dtype=object),
            "text": np.array([item_text[int(i)] for i in items_df["item_id"]], dtype=object),
            "category": items_df["category"].astype(str).to_numpy(dtype=object),
        }
    )

    lengths = np.array([len(s) for s in sessions], dtype=np.int64)
    user_index = np.repeat(np.arange(len(sessions), dtype=np.int64), lengths)
    position = np.concatenate([np.arange(n, dtype=np.int32) for n in lengths] or [np.zeros(0, np.int32)])
    session_items = np.concatenate(sessions) if len(sessions) else np.zeros(0, np.int64)
    sessions_df = pd.DataFrame(
        {
            "session_id": user_index,
            "user_id": user_index.astype(str).astype(object),
            "item_id": session_items.astype(str).astype(object),
            "position": position,
            "timestamp": position.astype(np.int64),
        }
    )
    return Dataset(interactions=interactions, items=items, sessions=sessions_df, name="demo")
