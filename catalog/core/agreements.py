"""Data use agreements and access requests: the pure rules for their questions, answers and texts.

An agreement version holds the questions a requester answers (free text, a choice among listed
values, or yes/no; required or not). A request's purpose and answers are evidence, so they are
kept exactly as sent: these rules only refuse, they never rewrite a value. Everything here is a
field error collected into :class:`~catalog.core.validate.Errors`, so one call reports them all.
"""
from __future__ import annotations

import re
from typing import Any

from catalog.core import validate

TITLE_MAX = 255
TEXT_MAX = 200_000  # the full terms, in Markdown
QUESTIONS_MAX = 50
QUESTION_TEXT_MAX = 2000
CHOICES_MAX = 50
CHOICE_MAX = 200
ANSWER_MAX = 10_000
PURPOSE_MAX = 10_000
REASON_MAX = 10_000
QUESTION_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
QUESTION_TYPES = ("text", "choice", "yesno")
YES_NO = {True: True, False: False, "yes": True, "no": False, "true": True, "false": False}


def questions(value: Any, errors: validate.Errors, field: str = "questions") -> list[dict[str, Any]]:
    """The questions of an agreement version in their normal form
    (``{"id", "text", "type", "choices", "required"}``), or field errors."""
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        errors.add(field, "Must be a list of {\"id\", \"text\", \"type\", \"choices\", \"required\"} objects")
        return []
    if len(value) > QUESTIONS_MAX:
        errors.add(field, f"At most {QUESTIONS_MAX} questions")
        return []
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for n, item in enumerate(value, 1):
        where = f"question {n}"
        if not isinstance(item, dict):
            errors.add(field, f"{where}: must be an object")
            continue
        unknown = set(item) - {"id", "text", "type", "choices", "required"}
        if unknown:
            errors.add(field, f"{where}: unknown keys {', '.join(sorted(map(str, unknown)))}")
        qid = item.get("id")
        if not isinstance(qid, str) or not QUESTION_ID_RE.match(qid):
            errors.add(field, f"{where}: id must be 1 to 64 letters, digits, '-' or '_'")
        elif qid in seen:
            errors.add(field, f"{where}: id {qid!r} is used twice")
        else:
            seen.add(qid)
        text = item.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > QUESTION_TEXT_MAX:
            errors.add(field, f"{where}: text must be 1 to {QUESTION_TEXT_MAX} characters")
        kind = item.get("type", "text")
        if kind not in QUESTION_TYPES:
            errors.add(field, f"{where}: type must be one of {', '.join(QUESTION_TYPES)}")
        choices = item.get("choices")
        if kind == "choice":
            if (not isinstance(choices, list) or not choices or len(choices) > CHOICES_MAX
                    or not all(isinstance(c, str) and c.strip() and len(c) <= CHOICE_MAX for c in choices)
                    or len(set(choices)) != len(choices)):
                errors.add(field, f"{where}: a choice question needs 1 to {CHOICES_MAX} distinct choices "
                                  f"of 1 to {CHOICE_MAX} characters")
                choices = []
        elif choices not in (None, []):
            errors.add(field, f"{where}: only a choice question has choices")
        required = item.get("required", False)
        if not isinstance(required, bool):
            errors.add(field, f"{where}: required must be true or false")
            required = False
        out.append({"id": qid, "text": text, "type": kind,
                    "choices": list(choices) if kind == "choice" else [], "required": required})
    return out


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def answers(qs: list[dict[str, Any]], value: Any, errors: validate.Errors,
            field: str = "answers") -> dict[str, Any]:
    """A request's answers to ``qs``, kept as sent: each must answer a question, a required question
    must be answered, a choice must be one of its choices, yes/no is ``true``/``false`` (or "yes"/"no")
    and free text is at most :data:`ANSWER_MAX` characters."""
    if value in (None, ""):
        value = {}
    if not isinstance(value, dict):
        errors.add(field, "Must be an object mapping question ids to answers")
        return {}
    by_id = {q["id"]: q for q in qs}
    for key in value:
        if key not in by_id:
            errors.add(field, f"No question {str(key)[:64]!r} in the agreement")
    for q in qs:
        given = value.get(q["id"])
        if _blank(given):
            if q["required"]:
                errors.add(field, f"Question {q['id']!r} must be answered: {q['text'][:200]}")
            continue
        if q["type"] == "text" and (not isinstance(given, str) or len(given) > ANSWER_MAX):
            errors.add(field, f"Question {q['id']!r}: the answer must be text of at most {ANSWER_MAX} characters")
        elif q["type"] == "choice" and given not in q["choices"]:
            errors.add(field, f"Question {q['id']!r}: the answer must be one of {', '.join(q['choices'])}")
        elif q["type"] == "yesno" and (not isinstance(given, (bool, str))
                                       or YES_NO.get(given if isinstance(given, bool) else given.lower()) is None):
            errors.add(field, f"Question {q['id']!r}: the answer must be yes or no")
    return dict(value)


def required_text(value: Any, errors: validate.Errors, field: str, max_len: int) -> str:
    """Text that must say something (a purpose, a reason), kept verbatim, at most ``max_len`` characters."""
    if not isinstance(value, str) or not value.strip():
        errors.add(field, "Missing value")
        return ""
    if len(value) > max_len:
        errors.add(field, f"Must be at most {max_len} characters")
    return value
