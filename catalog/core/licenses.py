"""The licences a dataset may carry (CKAN's default list), as pure data."""
from __future__ import annotations

from dataclasses import asdict, dataclass


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
)}
