"""Work after an ack lets the requests being answered go first, for a bounded time."""

from __future__ import annotations

import threading

from bot.services.container import AckGate


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
        with gate.admitted(5) as how:
            order.append("work")
            assert how == "quiet"

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

        def work() -> None:
            with gate.admitted(0.01) as how:
                assert how == "overdue"
                done.set()

        threading.Thread(target=work).start()
        assert done.wait(5)


def test_overdue_work_runs_one_piece_at_a_time_until_the_requests_stop():
    gate = AckGate()
    first_in, finish_first = threading.Event(), threading.Event()

    def work(hold: threading.Event | None) -> None:
        with gate.admitted(0.01, 60):
            if hold is not None:
                first_in.set()
                hold.wait(5)

    with gate.acking():
        first = threading.Thread(target=work, args=(finish_first,))
        first.start()
        assert first_in.wait(5)
        others = [threading.Thread(target=work, args=(None,)) for _ in range(3)]
        for t in others:
            t.start()
        for t in others:
            t.join(0.1)
        assert all(t.is_alive() for t in others)  # behind the overdue piece still running
        finish_first.set()
        first.join(5)
    for t in others:
        t.join(5)
        assert not t.is_alive()


def test_past_the_hard_limit_work_runs_whatever_else_runs():
    gate = AckGate()
    release = threading.Event()
    started = threading.Event()

    def stuck_overdue_piece() -> None:
        with gate.admitted(0.01, 60) as how:
            assert how == "overdue"
            started.set()
            release.wait(10)

    with gate.acking():  # a request that is never answered
        blocker = threading.Thread(target=stuck_overdue_piece)
        blocker.start()
        assert started.wait(5)
        with gate.admitted(0.01, 0.2) as how:
            assert how == "forced"
        release.set()
        blocker.join(5)


def test_no_request_no_wait():
    gate = AckGate()
    with gate.admitted(60) as how:  # at once
        assert how == "quiet"


def test_a_serving_process_takes_its_start_up_heap_out_of_the_collectors_reach():
    import gc

    from bot.app.wiring import settle_heap

    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # this is a test process: let it collect what it builds later


def test_work_bound_to_a_trigger_does_not_wait_behind_the_acks():
    from bot.services.container import Services

    services = Services(settings=None, store=None, gateway=None, clock=None, poster=None, simulated=True)  # type: ignore[arg-type]
    waited, at_once = threading.Event(), threading.Event()
    try:
        with services.acks.acking():  # a request being answered
            services.after_ack(waited.set)
            services.after_ack(at_once.set, wait_for_acks=False)
            assert at_once.wait(5)
            assert not waited.is_set()  # held for 1 s or until the request is answered
        assert waited.wait(5)
    finally:
        services.work.shutdown(wait=True)
