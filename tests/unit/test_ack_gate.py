"""Work after an ack lets the requests being answered go first, for a bounded time."""

from __future__ import annotations

import threading

from bot.services import AckGate


def test_work_waits_until_no_request_is_being_answered():
    gate = AckGate()
    order: list[str] = []
    entered, release = threading.Event(), threading.Event()

    def request() -> None:
        with gate.acking():
            entered.set()
            release.wait(5)
            order.append("acked")

    def work() -> None:
        gate.wait_quiet(5)
        order.append("work")

    t1 = threading.Thread(target=request)
    t1.start()
    entered.wait(5)
    t2 = threading.Thread(target=work)
    t2.start()
    t2.join(0.05)
    assert order == []  # still waiting for the ack
    release.set()
    t1.join(5)
    t2.join(5)
    assert order == ["acked", "work"]


def test_work_does_not_wait_forever_behind_a_stream_of_requests():
    gate = AckGate()
    with gate.acking():
        done = threading.Event()
        threading.Thread(target=lambda: (gate.wait_quiet(0.01), done.set())).start()
        assert done.wait(5)


def test_no_request_no_wait():
    gate = AckGate()
    gate.wait_quiet(60)  # returns at once


def test_a_serving_process_takes_its_start_up_heap_out_of_the_collectors_reach():
    import gc

    from bot.app import settle_heap

    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # this is a test process: let it collect what it builds later
