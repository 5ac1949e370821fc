"""An uploaded file as the catalog core sees it (no Flask types past the API layer)."""
from __future__ import annotations

import posixpath
import re
import unicodedata
from dataclasses import dataclass
from typing import BinaryIO

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Upload:
    stream: BinaryIO
    filename: str = ""
    content_type: str | None = None

    @property
    def display_name(self) -> str:
        return display_filename(self.filename)


def display_filename(name: str | None) -> str:
    """The client's file name, reduced to a harmless label for display only.

    It never becomes part of a path or object key (those come from ids).
    """
    base = posixpath.basename((name or "").replace("\\", "/"))
    base = _CONTROL.sub("", unicodedata.normalize("NFC", base)).strip()
    return base[:255]


def format_from_filename(name: str) -> str:
    """CKAN-style format label from the extension: ``data.csv.gz`` -> ``CSV``."""
    parts = display_filename(name).lower().split(".")
    for ext in reversed(parts[1:]):
        if ext not in {"gz", "bz2", "xz", "zst", "zip"}:
            return ext.upper()
    return ""
