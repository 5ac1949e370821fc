"""The query slots' queue (issue 16): while the site runs its maximum, a few queries wait for a slot
instead of being refused; a caller past its own cap, a full queue and a wait that lasts too long are
refused with the cap named. Real threads on :class:`catalog.datastore.slots.QuerySlots`, and one case
over HTTP against ``mosu up``."""
from __future__ import annotations

import threading
import uuid

import pytest
import requests

from catalog.core.errors import TooManyRequests
from catalog.datastore.slots import QuerySlots
from tests.conftest import ENDLESS_SQL


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


# -- over HTTP, against ``mosu up`` ----------------------------------------------------------------



@pytest.fixture(scope="module")
def queued(mosu_factory):
    """A site of one query slot, one caller one query, one more query may wait for the slot (60 s),
    and a query's time limit of 4 s, which is what frees the slot here."""
    return mosu_factory(query_timeout_seconds=4, query_max_concurrent=1, query_max_concurrent_per_caller=1,
                        query_queue_length=1, query_queue_seconds=60)


def test_over_http_a_query_waits_for_the_site_slot_and_one_past_the_queue_is_refused_at_once(queued):
    tokens = {name: queued.token(f"queue-{name}-{uuid.uuid4().hex[:6]}") for name in "abc"}
    answers: dict[str, requests.Response] = {}

    def send(name: str, sql: str) -> requests.Response:
        answers[name] = requests.post(f"{queued.url}/api/3/action/datastore_search_sql", json={"sql": sql},
                                      headers={"Authorization": tokens[name]}, timeout=90)
        return answers[name]

    def heavy() -> threading.Thread:
        thread = threading.Thread(target=send, args=("a", ENDLESS_SQL))
        thread.start()
        return thread

    # a's endless query holds the site's one slot once a's next query is refused by a's own cap (should
    # that probe take the slot first, the endless one is refused at once: send it again)
    running = heavy()
    while True:
        probe = requests.post(f"{queued.url}/api/3/action/datastore_search_sql", json={"sql": "SELECT 1 AS one"},
                              headers={"Authorization": tokens["a"]}, timeout=30)
        if probe.status_code == 429 and "(query_max_concurrent_per_caller)" in probe.text:
            break
        if not running.is_alive():
            running.join()
            running = heavy()
        threading.Event().wait(0.05)
    others = [threading.Thread(target=send, args=(name, "SELECT 42 AS answer")) for name in "bc"]
    for thread in others:
        thread.start()
    assert requests.get(f"{queued.url}/api/3/action/status_show", timeout=10).ok, "other calls are answered"
    for thread in [running, *others]:
        thread.join(90)
    assert answers["a"].status_code == 400 and "time limit" in answers["a"].text, answers["a"].text[:300]
    waited, refused = sorted((answers["b"], answers["c"]), key=lambda r: r.status_code)
    assert waited.status_code == 200 and waited.json()["result"]["records"] == [{"answer": 42}], waited.text[:300]
    assert refused.status_code == 429 and refused.json()["error"]["message"] == (
        "Too many queries at once: the site is running 1, its limit (query_max_concurrent); try again in a moment")
