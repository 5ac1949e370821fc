"""The licence register (CKAN's default list and the SPDX ids of the common open licences), as pure data.

A dataset may carry any short licence id, as in CKAN: one outside the register keeps its id as its
title, has no URL and is not counted as open. Portals name licences their own way ("CC-BY-4.0",
"cc-by", "other-at"), so refusing unknown ids made ``ckanapi load`` from them fail.
"""
from __future__ import annotations

import unicodedata
import urllib.parse
from dataclasses import dataclass

MAX_ID = 100


@dataclass(frozen=True)
class License:
    id: str
    title: str
    url: str = ""
    od_conformance: str = "not reviewed"
    domain: str = "content"  # CKAN's domain_content / domain_data: "content", "data" or both ("content data")
    generic: bool = False  # CKAN's is_generic: "Other (...)" and "not specified"

    @property
    def is_open(self) -> bool:
        return self.od_conformance == "approved"

    def as_dict(self) -> dict:
        """CKAN's ``license_list`` entry (``License.license_dictize``): every key CKAN sends, so a
        client written against CKAN finds ``domain_data``, ``is_generic`` or ``osd_conformance``."""
        return {"domain_content": "content" in self.domain, "domain_data": "data" in self.domain,
                "domain_software": False, "family": "", "id": self.id, "is_generic": self.generic,
                "maintainer": "", "od_conformance": self.od_conformance, "osd_conformance": "not reviewed",
                "status": "active", "title": self.title, "url": self.url,
                "is_okd_compliant": self.is_open, "is_osi_compliant": False}


LICENSES: dict[str, License] = {lic.id: lic for lic in (
    License("notspecified", "License not specified", domain="", generic=True),
    License("odc-pddl", "Open Data Commons Public Domain Dedication and License (PDDL)",
            "http://www.opendefinition.org/licenses/odc-pddl", "approved", "data"),
    License("odc-odbl", "Open Data Commons Open Database License (ODbL)",
            "http://www.opendefinition.org/licenses/odc-odbl", "approved", "data"),
    License("odc-by", "Open Data Commons Attribution License",
            "http://www.opendefinition.org/licenses/odc-by", "approved", "data"),
    License("cc-zero", "Creative Commons CCZero", "http://www.opendefinition.org/licenses/cc-zero", "approved"),
    License("cc-by", "Creative Commons Attribution", "http://www.opendefinition.org/licenses/cc-by", "approved"),
    License("cc-by-sa", "Creative Commons Attribution Share-Alike",
            "http://www.opendefinition.org/licenses/cc-by-sa", "approved"),
    License("gfdl", "GNU Free Documentation License", "http://www.opendefinition.org/licenses/gfdl", "approved"),
    License("other-open", "Other (Open)", "", "approved", generic=True),
    License("other-pd", "Other (Public Domain)", "", "approved", generic=True),
    License("other-at", "Other (Attribution)", "", "approved", generic=True),
    License("uk-ogl", "UK Open Government Licence (OGL)",
            "http://reference.data.gov.uk/id/open-government-licence", "approved", "content data"),
    License("cc-nc", "Creative Commons Non-Commercial (Any)", "http://creativecommons.org/licenses/by-nc/2.0/"),
    License("other-nc", "Other (Non-Commercial)", generic=True),
    License("other-closed", "Other (Not Open)", generic=True),
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
            "https://opendatacommons.org/licenses/odbl/1-0/", "approved", "data"),
    License("ODC-By-1.0", "Open Data Commons Attribution License v1.0",
            "https://opendatacommons.org/licenses/by/1-0/", "approved", "data"),
    License("PDDL-1.0", "Open Data Commons Public Domain Dedication & License 1.0",
            "https://opendatacommons.org/licenses/pddl/1-0/", "approved", "data"),
    License("OGL-UK-3.0", "Open Government Licence v3.0",
            "https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/", "approved",
            "content data"),
)}


def id_problem(license_id: str) -> str | None:
    """Why ``license_id`` cannot be stored, or None: any id is kept, registered or not, but it is
    shown in pages, feeds and exports, so it stays a short line of printable text."""
    if len(license_id) > MAX_ID:
        return f"Must be at most {MAX_ID} characters"
    if any(unicodedata.category(c).startswith("C") for c in license_id):
        return "Must not contain control characters"
    return None


def link_headers(license_ids: tuple[str, ...] | list[str]) -> list[str]:
    """HTTP ``Link`` values (RFC 8288, relation ``license``) for the licences of the data in an
    answer: an export names the terms its rows come under, as the dataset's page and dict do. A
    licence outside the register, or without a URL, is named by a ``urn:mosu:license:<id>`` target.
    Any id may be stored, so it is percent-encoded and the title kept to printable ASCII without
    quotes: nothing a provider typed can end the header or add a parameter."""
    out = []
    for license_id in dict.fromkeys(license_ids):
        lic = LICENSES.get(license_id)
        title = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in (lic.title if lic else license_id))
        target = lic.url if lic and lic.url else "urn:mosu:license:" + urllib.parse.quote(license_id, safe="")
        out.append(f'<{target}>; rel="license"; title="{title}"')
    return out
