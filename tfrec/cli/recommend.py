"""``tfrec recommend``: top-k for one user, with the history's titles, fallbacks and exclusions."""
from __future__ import annotations

import sys

from tfrec.cli.common import format_table


def _recommend_notes(served, user: str, history: list[str]) -> list[str]:
    """The lines ``tfrec recommend`` prints before its table: the history with titles, the
    fallback and unknown history items (as warnings), the number of seen items excluded."""
    explained = served.explain([user], [history])
    data = served.trained_on.data if served.trained_on is not None and served.trained_on.data else "the model's"
    lines = []
    if history:
        lines.append("history: " + "; ".join(f"{item} {served.title(item)!r}" if served.title(item) else f"{item} (unknown)" for item in history))
    if not explained.known_user[0]:
        then = f"showing the model's fallback: {served.fallback_description}" if explained.fallback[0] else "recommending from the history alone"
        lines.append(f"tfrec: warning: user {user} is not in the training data ({data}): {then}")
    unknown = explained.unknown_history[0]
    if unknown:
        lines.append(f"tfrec: warning: {len(unknown)} of {len(history)} history items are unknown to the model and were ignored: {', '.join(unknown)}")
    lines.append(f"excluded {explained.excluded[0]} already-seen item{'s' if explained.excluded[0] != 1 else ''}")
    return lines


def cmd_recommend(args) -> int:
    from tfrec.serving import ServedModel

    served = ServedModel.load(args.savedmodel)
    history = [h.strip() for h in args.history.split(",") if h.strip()]
    item_ids, scores = served.recommend([args.user], history=[history], k=args.k)
    rows = [
        {"rank": rank, "item_id": item, "title": served.title(item), "score": float(score)}
        for rank, (item, score) in enumerate(zip(item_ids[0], scores[0]), start=1)
        if item
    ]
    print(served.describe())
    for line in _recommend_notes(served, args.user, history):
        print(line, file=sys.stderr if line.startswith("tfrec: warning:") else sys.stdout)
    print(f"top {args.k} for user {args.user}:")
    print(format_table(rows, ["rank", "item_id", "title", "score"]))
    return 0
