"""storage/posts.py on a real SQLite file: a scheduled post is claimed once, released only while
claimed, and found by its key's prefix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.posts import PostsRepo

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_a_post_is_claimed_once_and_marked_posted(db):
    posts = PostsRepo(db)
    assert posts.claim_post("summary:C1:2026-W45", T0, "C1")
    assert not posts.claim_post("summary:C1:2026-W45", T0, "C1")  # another run of the same slot
    assert posts.scheduled_post("summary:C1:2026-W45")["status"] == "claimed"
    posts.mark_posted("summary:C1:2026-W45", T0 + timedelta(seconds=2), ts="1.5")
    row = posts.scheduled_post("summary:C1:2026-W45")
    assert (row["status"], row["channel"], row["ts"], row["posted_at"]) == (
        "posted", "C1", "1.5", "2026-11-02T09:00:02.000000Z")  # the claim's channel kept
    posts.release_post("summary:C1:2026-W45")  # posted: not released
    assert not posts.claim_post("summary:C1:2026-W45", T0, "C1")
    assert posts.scheduled_post("nothing") is None


def test_a_failed_post_is_released_so_the_next_run_tries_again(db):
    posts = PostsRepo(db)
    assert posts.claim_post("alert:d1", T0)
    posts.release_post("alert:d1")
    assert posts.scheduled_post("alert:d1") is None
    assert posts.claim_post("alert:d1", T0 + timedelta(minutes=1), "C9")
    posts.mark_posted("alert:d1", T0, channel="C3", ts="2.0")
    assert posts.scheduled_post("alert:d1")["channel"] == "C3"


def test_keys_are_found_by_their_exact_prefix(db):
    posts = PostsRepo(db)
    for key in ("budget:C1:2026-11:80", "budget:C1:2026-11:50", "budget:C2:2026-11:50", "budget:C1:2026-10:50",
                "a_b:1", "axb:1"):
        posts.claim_post(key, T0)
    assert posts.scheduled_post_keys("budget:C1:2026-11:") == ["budget:C1:2026-11:50", "budget:C1:2026-11:80"]
    assert posts.scheduled_post_keys("a_b") == ["a_b:1"]  # not a LIKE pattern
    assert posts.scheduled_post_keys("none:") == []
