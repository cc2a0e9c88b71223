"""storage/rows.py: the WHERE builder, row decoding and tokens every repository shares."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from storage.rows import IN_CHUNK, decoded, new_token, where_matching


def test_a_where_clause_leaves_out_none_and_takes_a_tuple_as_any_of_its_values():
    assert where_matching() == ("1=1", {})
    assert where_matching(owner=None, channel="C1", status=("pending", "approved")) == (
        "1=1 AND channel = :w_channel_0 AND status IN (:w_status_0, :w_status_1)",
        {"w_channel_0": "C1", "w_status_0": "pending", "w_status_1": "approved"})
    assert where_matching(status=()) == ("1=1 AND 1=0", {})  # any of no values: nothing


@dataclass
class Row:
    id: int
    body: dict
    extra: dict | None
    at: datetime | None


def test_a_row_is_decoded_json_columns_parsed_and_empty_ones_defaulted():
    row = {"id": 7, "body": '{"a": [1, 2]}', "extra": "", "at": "2026-11-02T09:00:00.000000Z", "ignored": 1}
    assert decoded(Row, row, json_columns={"body": {}, "extra": None}, times=("at",)) == {
        "id": 7, "body": {"a": [1, 2]}, "extra": None, "at": datetime(2026, 11, 2, 9, tzinfo=UTC)}
    assert decoded(Row, {"id": 1}, json_columns={"body": {}, "extra": None}, times=("at",)) == {
        "id": 1, "body": {}, "extra": None, "at": None}


def test_tokens_are_url_safe_and_never_repeat():
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", t) for t in tokens)


def test_an_in_chunk_stays_well_under_sqlites_limit_on_parameters():
    assert 3 * IN_CHUNK < 32766 and IN_CHUNK <= 999
