"""Every state a version of a resource and its ingest job can take, and the moves between them.

Three things carry a state, in one vocabulary:

- a **version** (``ResourceVersion.status``): ``queued`` when uploaded, then ``ready`` (published),
  ``held`` (waiting for an editor to acknowledge personal information; acknowledging publishes it)
  or ``failed``. ``ready`` and ``failed`` are final: a later upload is a new version. A version is
  never ``running`` itself: its job runs.
- its **job** (``IngestJob.state``): ``queued``, ``running`` (claimed under a lease; claimed again
  when the lease runs out), then ``done`` or ``failed``, or back to ``queued`` to retry after a
  transient error. A job that is ``done`` left its version ``ready`` or ``held``.
- the **resource** (``Resource.ingest_status``) shows the latest event of its uploads: ``queued``,
  ``running``, ``ready``, ``held`` or ``failed``. Several uploads of one resource may be in
  flight at once on several workers, so any state may follow any other there; what is checked is
  that it is a state of this vocabulary and that only ``held`` and ``failed`` carry a message.

The strings are the stored values and the API's, unchanged (the enums are ``StrEnum``s, so
``State.READY == "ready"``). Code moves a state only through :func:`move_version`,
:func:`check_job_move` and :func:`show`; an illegal move raises :class:`IllegalMove`, a
programming error (a 500, never a user's mistake). Pure: no database or storage access.
"""
from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:  # only for type hints: this module stays importable without the database layer
    from catalog.db.models import Resource, ResourceVersion


class State(StrEnum):
    """A version's state, and what a resource shows of its latest upload."""

    QUEUED = "queued"
    RUNNING = "running"
    HELD = "held"
    READY = "ready"
    FAILED = "failed"


class JobState(StrEnum):
    """An ingest job's state."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


VERSION_MOVES: Mapping[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.READY, State.HELD, State.FAILED}),  # the worker's outcome
    State.HELD: frozenset({State.READY}),  # an editor acknowledged the personal information found
    State.READY: frozenset(),  # published: immutable; a revalidation changes its report, not its state
    State.FAILED: frozenset(),  # the upload is kept for its editors; a new upload is a new version
}
"""The allowed moves of a version (a version is never ``running``: see the module's docstring)."""

JOB_MOVES: Mapping[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING}),  # claimed once due
    # claimed again by another worker once the lease ran out; finished; or back to wait for a retry
    JobState.RUNNING: frozenset({JobState.RUNNING, JobState.DONE, JobState.FAILED, JobState.QUEUED}),
    JobState.DONE: frozenset(),
    JobState.FAILED: frozenset(),
}
"""The allowed moves of an ingest job."""

UNPUBLISHED_OUTCOMES = frozenset({State.HELD, State.FAILED})
"""The outcomes that leave a version unpublished with a reason (shown in full to its editors only)."""


class IllegalMove(RuntimeError):
    """Code tried a state change the lifecycle does not allow: a bug, not a user's mistake."""


def _move(kind: str, table: Mapping, current: str | None, to: StrEnum) -> None:
    try:
        source = type(to)(current)
    except ValueError:
        raise IllegalMove(f"{kind} in unknown state {current!r} cannot move to {to.value!r}") from None
    if to not in table.get(source, ()):
        raise IllegalMove(f"{kind} cannot move from {source.value!r} to {to.value!r}")


def check_version_move(current: str | None, to: State) -> State:
    """``to`` if a version in state ``current`` may move there, else :class:`IllegalMove`."""
    _move("a version", VERSION_MOVES, current, State(to))
    return State(to)


def check_job_move(current: str | None, to: JobState) -> JobState:
    """``to`` if a job in state ``current`` may move there, else :class:`IllegalMove`."""
    _move("an ingest job", JOB_MOVES, current, JobState(to))
    return JobState(to)


def move_version(version: ResourceVersion, to: State, error: str | None = None) -> None:
    """Move ``version`` to ``to`` with its ``error`` (the full reason, for its editors; None unless
    ``held`` or ``failed``). Publishing goes through :func:`catalog.versions.publish.publish_version`."""
    to = check_version_move(version.status, to)
    if error is not None and to not in UNPUBLISHED_OUTCOMES:
        raise IllegalMove(f"a {to.value!r} version carries no error")
    version.status, version.error = to.value, error


def show(res: Resource, state: State, summary: str | None = None) -> None:
    """Show ``state`` as resource ``res``'s latest ingest event, with the value-free ``summary`` of
    why an upload is held or failed (see :mod:`catalog.versions.unpublished`)."""
    state = State(state)
    if summary is not None and state not in UNPUBLISHED_OUTCOMES:
        raise IllegalMove(f"a resource shown {state.value!r} carries no error")
    res.ingest_status, res.ingest_error = state.value, summary


def is_published(version: ResourceVersion) -> bool:
    """Whether researchers may read ``version``'s data: ``ready``, with its Parquet. A ``held`` version
    has its Parquet written but waits for an acknowledgement: its data must not leave the platform."""
    return version.status == State.READY and version.parquet_key is not None
