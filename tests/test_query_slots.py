"""The query slots' queue (issue 16): while the site runs its maximum, a few queries wait for a slot
instead of being refused; a caller past its own cap, a full queue and a wait that lasts too long are
refused with the cap named. Real threads on :class:`catalog.datastore.slots.QuerySlots`."""
from __future__ import annotations

import threading

import pytest

from catalog.core.errors import TooManyRequests
from catalog.datastore.slots import QuerySlots


def _waiter(slots: QuerySlots, caller: str) -> tuple[threading.Thread, dict]:
    """``caller`` asking for a slot in a thread of its own: the thread and what it got."""
    got: dict = {}

    def run() -> None:
        try:
            got["slot"] = slots.acquire(caller)
        except TooManyRequests as exc:
            got["refused"] = str(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, got


def _wait_for_waiters(slots: QuerySlots, n: int) -> None:
    for _ in range(2000):
        with slots._cond:
            if slots._waiters == n:
                return
        threading.Event().wait(0.005)
    raise AssertionError(f"{n} waiter(s) never queued")


def test_a_query_waits_for_a_slot_and_gets_it_when_one_is_given_back():
    slots = QuerySlots(total=2, per_caller=2, waiting=1, wait_seconds=60)
    first, second = slots.acquire("a"), slots.acquire("b")
    thread, got = _waiter(slots, "c")
    _wait_for_waiters(slots, 1)
    assert got == {} and slots.running == 2, "it waits while the site is full"
    second.release()
    thread.join(30)
    assert "slot" in got and slots.running == 2, "the slot given back went to the waiting query"
    got["slot"].release()
    first.release()
    assert slots.running == 0


def test_past_the_queue_a_query_is_refused_at_once_naming_the_site_cap():
    slots = QuerySlots(total=1, per_caller=1, waiting=1, wait_seconds=60)
    held = slots.acquire("a")
    thread, got = _waiter(slots, "b")
    _wait_for_waiters(slots, 1)
    with pytest.raises(TooManyRequests) as refused:
        slots.acquire("c")
    assert str(refused.value) == ("Too many queries at once: the site is running 1, its limit "
                                  "(query_max_concurrent); try again in a moment")
    held.release()
    thread.join(30)
    assert "slot" in got
    got["slot"].release()


def test_a_query_that_waited_its_time_is_refused_and_leaves_the_queue():
    slots = QuerySlots(total=1, per_caller=1, waiting=1, wait_seconds=0.2)
    held = slots.acquire("a")
    with pytest.raises(TooManyRequests) as refused:
        slots.acquire("b")
    assert str(refused.value) == ("Too many queries at once: the site is running 1, its limit "
                                  "(query_max_concurrent); none finished within 0.2 s; try again in a moment")
    assert slots._waiters == 0 and slots.running == 1
    held.release()
    slots.acquire("b").release()


def test_a_caller_past_its_own_cap_never_waits():
    slots = QuerySlots(total=2, per_caller=1, waiting=4, wait_seconds=60)
    held = slots.acquire("a")
    with pytest.raises(TooManyRequests) as refused:
        slots.acquire("a")
    assert "(query_max_concurrent_per_caller)" in str(refused.value) and slots._waiters == 0
    held.release()


def test_a_waiting_caller_whose_other_query_took_its_last_slot_is_refused():
    """Its own cap is checked again after the wait: another of its requests may have been given a slot."""
    slots = QuerySlots(total=2, per_caller=1, waiting=2, wait_seconds=60)
    held = [slots.acquire("x"), slots.acquire("y")]
    one, got_one = _waiter(slots, "a")
    two, got_two = _waiter(slots, "a")
    _wait_for_waiters(slots, 2)
    held[0].release()
    _wait_for_waiters(slots, 1)  # one of them has the slot
    held[1].release()  # the other wakes to a free slot, but its caller is at its cap
    one.join(30)
    two.join(30)
    outcomes = sorted(("slot" in g, g.get("refused", "")) for g in (got_one, got_two))
    assert outcomes[1][0] is True, "one of the two got the slot"
    assert outcomes[0][0] is False and "(query_max_concurrent_per_caller)" in outcomes[0][1]
    (got_one.get("slot") or got_two.get("slot")).release()
    assert slots.running == 0
