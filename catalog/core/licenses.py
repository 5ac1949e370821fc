"""The licence register (CKAN's default list and the SPDX ids of the common open licences), as pure data.

A dataset may carry any short licence id, as in CKAN: one outside the register keeps its id as its
title, has no URL and is not counted as open. Portals name licences their own way ("CC-BY-4.0",
"cc-by", "other-at"), so refusing unknown ids made ``ckanapi load`` from them fail.
"""
from __future__ import annotations

import unicodedata
from dataclasses import asdict, dataclass

MAX_ID = 100


@dataclass(frozen=True)
class License:
    id: str
    title: str
    url: str = ""
    od_conformance: str = "not reviewed"

    @property
    def is_open(self) -> bool:
        return self.od_conformance == "approved"

    def as_dict(self) -> dict:
        return {**asdict(self), "is_okd_compliant": self.is_open, "status": "active"}


LICENSES: dict[str, License] = {lic.id: lic for lic in (
    License("notspecified", "License not specified"),
    License("odc-pddl", "Open Data Commons Public Domain Dedication and License (PDDL)",
            "http://www.opendefinition.org/licenses/odc-pddl", "approved"),
    License("odc-odbl", "Open Data Commons Open Database License (ODbL)",
            "http://www.opendefinition.org/licenses/odc-odbl", "approved"),
    License("odc-by", "Open Data Commons Attribution License",
            "http://www.opendefinition.org/licenses/odc-by", "approved"),
    License("cc-zero", "Creative Commons CCZero", "http://www.opendefinition.org/licenses/cc-zero", "approved"),
    License("cc-by", "Creative Commons Attribution", "http://www.opendefinition.org/licenses/cc-by", "approved"),
    License("cc-by-sa", "Creative Commons Attribution Share-Alike",
            "http://www.opendefinition.org/licenses/cc-by-sa", "approved"),
    License("gfdl", "GNU Free Documentation License", "http://www.opendefinition.org/licenses/gfdl", "approved"),
    License("other-open", "Other (Open)", "", "approved"),
    License("other-pd", "Other (Public Domain)", "", "approved"),
    License("other-at", "Other (Attribution)", "", "approved"),
    License("uk-ogl", "UK Open Government Licence (OGL)",
            "http://reference.data.gov.uk/id/open-government-licence", "approved"),
    License("cc-nc", "Creative Commons Non-Commercial (Any)", "http://creativecommons.org/licenses/by-nc/2.0/"),
    License("other-nc", "Other (Non-Commercial)"),
    License("other-closed", "Other (Not Open)"),
    # SPDX ids (https://spdx.org/licenses/) of the open licences portals use most
    License("CC0-1.0", "Creative Commons Zero v1.0 Universal",
            "https://creativecommons.org/publicdomain/zero/1.0/", "approved"),
    License("CC-BY-4.0", "Creative Commons Attribution 4.0 International",
            "https://creativecommons.org/licenses/by/4.0/", "approved"),
    License("CC-BY-SA-4.0", "Creative Commons Attribution Share Alike 4.0 International",
            "https://creativecommons.org/licenses/by-sa/4.0/", "approved"),
    License("CC-BY-NC-4.0", "Creative Commons Attribution Non Commercial 4.0 International",
            "https://creativecommons.org/licenses/by-nc/4.0/"),
    License("ODbL-1.0", "Open Data Commons Open Database License v1.0",
            "https://opendatacommons.org/licenses/odbl/1-0/", "approved"),
    License("ODC-By-1.0", "Open Data Commons Attribution License v1.0",
            "https://opendatacommons.org/licenses/by/1-0/", "approved"),
    License("PDDL-1.0", "Open Data Commons Public Domain Dedication & License 1.0",
            "https://opendatacommons.org/licenses/pddl/1-0/", "approved"),
    License("OGL-UK-3.0", "Open Government Licence v3.0",
            "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/", "approved"),
)}


def id_problem(license_id: str) -> str | None:
    """Why ``license_id`` cannot be stored, or None: any id is kept, registered or not, but it is
    shown in pages, feeds and exports, so it stays a short line of printable text."""
    if len(license_id) > MAX_ID:
        return f"Must be at most {MAX_ID} characters"
    if any(unicodedata.category(c).startswith("C") for c in license_id):
        return "Must not contain control characters"
    return None
