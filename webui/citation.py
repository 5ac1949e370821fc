"""What a dataset page shows of a dataset's history and how to cite it (pure: no request, no actions).

A citation names the dataset's version, publisher, year and address, so a reader of a paper finds
the same data again; BibTeX and RIS are the two formats reference managers import. The version
history says what changed in the columns between two uploads, so a researcher sees at a glance
whether a new version breaks their code.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_BIBTEX_SPECIAL = re.compile(r"[\\{}%&$#_~^]")
_BIBTEX_KEY = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Citation:
    title: str
    publisher: str
    year: str
    version: str
    url: str
    key: str

    def bibtex(self) -> str:
        """A BibTeX ``@misc`` entry; every value is escaped, so a title with braces or a backslash
        cannot end the field early or run a TeX command."""
        fields = [("title", _bibtex(self.title)), ("author", "{" + _bibtex(self.publisher) + "}"),
                  ("publisher", _bibtex(self.publisher)), ("year", _bibtex(self.year)),
                  ("version", _bibtex(self.version)), ("url", _bibtex_url(self.url)),
                  ("howpublished", r"\url{" + _bibtex_url(self.url) + "}")]
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value not in ("", "{}"))
        return f"@misc{{{self.key},\n{body}\n}}"

    def ris(self) -> str:
        """An RIS record (type DATA): one tag per line, values on one line each."""
        lines = [("TY", "DATA"), ("TI", self.title), ("AU", self.publisher), ("PB", self.publisher),
                 ("PY", self.year), ("ET", self.version), ("UR", self.url)]
        return "\n".join(f"{tag}  - {_one_line(value)}" for tag, value in lines if value) + "\nER  - "


def _one_line(value: str) -> str:
    return " ".join(str(value).split())


def _bibtex(value: str) -> str:
    """Text safe inside a braced BibTeX field: TeX's special characters escaped, on one line."""
    return _BIBTEX_SPECIAL.sub(lambda m: {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}",
                                          "^": r"\textasciicircum{}"}.get(m[0], "\\" + m[0]), _one_line(value))


def _bibtex_url(value: str) -> str:
    """A URL inside a BibTeX field: only the characters that would break the field are escaped."""
    return re.sub(r"[{}\\%#]", lambda m: "\\" + m[0], _one_line(value))


def citation(pkg: dict[str, Any], versions: dict[str, list[dict[str, Any]]], url: str) -> Citation:
    """The citation of dataset ``pkg`` (a ``package_show`` answer) at its current versions.

    Version: the dataset's own ``version`` field when the publisher set one, else the highest
    version number of its resources' current uploads ("2" after a second upload), else none.
    Year: when the newest current version was published, else when the dataset was created.
    Publisher: the organization's title, else the author.
    """
    current = [v for vs in versions.values() for v in vs if v.get("current")]
    version = str(pkg.get("version") or "") or (str(max(v["number"] for v in current)) if current else "")
    published = sorted(v["published"] for v in current if v.get("published"))
    year = (published[-1] if published else pkg.get("metadata_created") or "")[:4]
    org = pkg.get("organization") or {}
    publisher = org.get("title") or org.get("name") or pkg.get("author") or pkg.get("maintainer") or ""
    key = _BIBTEX_KEY.sub("_", f"{pkg['name']}_{year}").strip("_") or "dataset"
    return Citation(title=pkg.get("title") or pkg["name"], publisher=publisher, year=year, version=version,
                    url=url, key=key)


def schema_changes(versions: list[dict[str, Any]]) -> dict[str, dict[str, list[str]]]:
    """For each version (by id, newest first as ``resource_version_list`` gives them), what changed
    in its columns since the version before it: ``added``, ``removed`` and ``retyped``
    (``"name: old → new"``). The first version, and a version whose schema or whose predecessor's
    schema is not shown to the caller, have no entry."""
    out: dict[str, dict[str, list[str]]] = {}
    ordered = sorted(versions, key=lambda v: v["number"])
    for before, after in zip(ordered, ordered[1:]):
        if not isinstance(before.get("schema"), list) or not isinstance(after.get("schema"), list):
            continue
        old = {str(f.get("id")): str(f.get("type", "")) for f in before["schema"] if isinstance(f, dict)}
        new = {str(f.get("id")): str(f.get("type", "")) for f in after["schema"] if isinstance(f, dict)}
        out[after["id"]] = {"added": [c for c in new if c not in old], "removed": [c for c in old if c not in new],
                            "retyped": [f"{c}: {old[c]} → {new[c]}" for c in new if c in old and old[c] != new[c]]}
    return out
