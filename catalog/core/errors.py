"""Typed errors raised anywhere in the platform.

They carry what a user needs to know and nothing more; the HTTP layer
(:mod:`catalog.api.errors`) and the web pages turn them into responses in one
place. Anything that is not a :class:`MosuError` is an internal error: logged,
never shown.
"""
from __future__ import annotations


class MosuError(Exception):
    """Base class of every error a user may see."""

    message: str
    # Set by :func:`catalog.actions.run_checked` as the error leaves an action, for the audit event of
    # a refused call: the action's name, and the last permission check refused before the error
    # (permission, object), e.g. ("edit-dataset", "package:<id>").
    action: str | None = None
    denied: tuple[str, str] | None = None
    # A stable name of the message (``code``) and its values (``params``), set with :meth:`coded` where a
    # user meets the message on a page: the pages show it in the page's language by this code (the
    # catalog knows no language; ``message`` stays the English text the API answers).
    code: str | None = None
    params: dict[str, str] = {}  # noqa: RUF012 - never mutated: coded() sets a new dict on the instance

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def coded(self, code: str, **params: object) -> MosuError:
        """This error with its message's ``code`` and ``params`` (returned, to raise in one line)."""
        self.code, self.params = code, {k: str(v) for k, v in params.items()}
        return self


class NotFound(MosuError):
    """The object does not exist, or the caller may not know that it exists."""


class Hidden(NotFound):
    """Not Found answered to hide an object the caller may not even see (the access policy's refusal):
    word for word what a missing object gets, so its existence does not leak. The type only tells the
    audit log that this 404 is a refused call (a plain :class:`NotFound`, an unknown id, is not one)."""


class NotAuthorized(MosuError):
    """The caller may not do this."""


class InvalidToken(NotAuthorized):
    """An API token that signs nobody in (403): ``reason`` ``unknown``, ``revoked``, ``expired`` or
    ``inactive_user``, and, when the token exists, its id and its owner's, for the audit log's
    ``sign_in_failure`` (never shown: the caller gets the message only)."""

    method = "token"

    def __init__(self, message: str, reason: str, token_id: str | None = None, user_id: str | None = None) -> None:
        super().__init__(message)
        self.reason, self.token_id, self.user_id = reason, token_id, user_id


class WrongPassword(InvalidToken):
    """A web sign-in with a user name and password that sign nobody in (403). The caller is told only
    "wrong user name or password", whichever was wrong; the audit log's ``sign_in_failure`` keeps the
    ``reason`` (``wrong_password``, ``unknown_user``, ``inactive_user``) and the user's id when known."""

    method = "password"


class CsrfRefused(NotAuthorized):
    """A form or script request of a browser without its page's CSRF token (403): it may come from
    another site acting as the user, so it is not carried out."""


class ValidationError(MosuError):
    """Input was refused; ``field_errors`` maps a field name to its messages."""

    def __init__(self, field_errors: dict[str, list[str]] | str, message: str | None = None) -> None:
        if isinstance(field_errors, str):
            field_errors = {"message": [field_errors]}
        self.field_errors = field_errors
        if message is None:
            message = "; ".join(f"{k}: {' '.join(v)}" for k, v in field_errors.items())
        super().__init__(message)


class BadRequest(MosuError):
    """The request itself could not be understood (bad JSON, unknown action)."""


class UnknownAction(BadRequest):
    """No action has the name that was called (CKAN's "Bad request - Action Error")."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Action name not known: {name}")
        self.name = name


class PayloadTooLarge(MosuError):
    """An upload exceeded a configured limit."""


class TooManyRequests(MosuError):
    """The caller sent too many requests of a kind; ``retry_after`` (seconds) says when to try again;
    ``limit`` names the limit reached (for the audit log): ``query_slots_caller``, ``query_slots_site``,
    ``bad_token`` or ``sign_in``."""

    def __init__(self, message: str, retry_after: int | None = None, limit: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.limit = limit


class QueryRejected(MosuError):
    """A query was refused by the sandbox or stopped by a limit."""


class IngestFailed(MosuError):
    """A permanent ingest failure: the file itself is the problem; retrying will not help.

    ``public``: the message quotes nothing from the upload (no values, names or lines), so
    anyone who may read the dataset may read it; otherwise only its editors do.
    """

    def __init__(self, message: str, public: bool = False) -> None:
        super().__init__(message)
        self.public = public


class QualityGateFailed(IngestFailed):
    """Blocking expectations failed; the version is not published."""

    def __init__(self, message: str, report: dict) -> None:
        super().__init__(message)
        self.report = report  # kept on the version: a failed version still has its report


class SearchQueryError(MosuError):
    """A search query (``q``, ``fq``, ``sort``) could not be parsed."""


class StorageUnavailable(MosuError):
    """Object storage could not be reached: nothing was stored or recorded, and the same request may
    succeed later (503; a worker retries the job with back-off)."""


class StoredDataMissing(MosuError):
    """An object the catalog records is not in object storage (removed behind the platform's back,
    or the wrong bucket configured). Nothing is served; the operator is told in the log (503: the
    platform cannot answer until the object is restored)."""


class AuditUnavailable(MosuError):
    """The audit event of a read could not be written (database locked past its timeout, disk full,
    read-only file): the data is not served unrecorded (503; the same request may succeed later)."""


class CatalogUnavailable(MosuError):
    """The catalog's database cannot be used at the moment (its files read-only, its disk gone): 503,
    the same request may succeed later."""


class StartupError(MosuError):
    """The platform cannot start (port in use, unwritable directory, missing binary)."""


# The HTTP status and CKAN error type of each error, in this one table.
_HTTP: list[tuple[type[MosuError], int, str]] = [
    (NotFound, 404, "Not Found Error"),
    (NotAuthorized, 403, "Authorization Error"),
    (ValidationError, 409, "Validation Error"),
    (PayloadTooLarge, 413, "Validation Error"),
    (QueryRejected, 400, "Validation Error"),
    (TooManyRequests, 429, "Rate Limit Error"),
    (StorageUnavailable, 503, "Service Unavailable Error"),
    (StoredDataMissing, 503, "Service Unavailable Error"),
    (AuditUnavailable, 503, "Service Unavailable Error"),
    (CatalogUnavailable, 503, "Service Unavailable Error"),
    (SearchQueryError, 400, "Search Query Error"),
    (UnknownAction, 400, "Bad request - Action Error"),
    (BadRequest, 400, "Bad request - JSON Error"),
]


def http_status(exc: BaseException) -> tuple[int, str]:
    """(HTTP status, CKAN ``__type``) for an error; anything unknown is a 500."""
    for cls, status, ckan_type in _HTTP:
        if isinstance(exc, cls):
            return status, ckan_type
    return 500, "Internal Server Error"
