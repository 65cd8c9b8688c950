"""Request ids: unguessable, unique, and in time order (the records index grows at one end)."""

from __future__ import annotations

import time

from polyroute.api.responses import new_request_id
from polyroute.observability.request_log import REQUEST_ID


def test_ids_are_unique_and_well_formed() -> None:
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(REQUEST_ID.match(request_id) for request_id in ids)
    assert all(len(request_id) == 4 + 12 + 24 for request_id in ids)


def test_ids_sort_by_the_time_they_were_made() -> None:
    earlier = new_request_id()
    time.sleep(0.002)
    later = new_request_id()
    assert earlier < later
    stamp = int(later[4:16], 16)
    assert abs(stamp - time.time_ns() // 1_000_000) < 1_000


def test_random_part_differs_within_one_millisecond() -> None:
    ids = [new_request_id() for _ in range(100)]
    assert len({request_id[16:] for request_id in ids}) == 100
