"""Demo datasets shipped with Mosu, loaded through the public API like any client would."""
from __future__ import annotations

import json
import logging
from importlib import resources
from typing import Any

log = logging.getLogger("catalog.cli.demo")


def manifest() -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath("datasets.json").read_text("utf-8"))


def load(url: str, token: str) -> list[str]:
    """Create the demo organization (if ``token`` may: only sysadmins, by default) and datasets
    over HTTP with ckanapi; skip what exists.

    Returns the names of the datasets it created.
    """
    import ckanapi

    doc = manifest()
    ckan = ckanapi.RemoteCKAN(url, apikey=token, user_agent="mosu-demo")
    org = doc["organization"]
    try:
        ckan.action.organization_show(id=org["name"])
    except ckanapi.NotFound:
        ckan.action.organization_create(**org)
    created = []
    for ds in doc["datasets"]:
        try:
            ckan.action.package_show(id=ds["name"])
            continue
        except ckanapi.NotFound:
            pass
        pkg = ckan.action.package_create(
            name=ds["name"], title=ds["title"], notes=ds["notes"], license_id=ds["license_id"],
            url=ds["url"], owner_org=org["name"], tags=[{"name": t} for t in ds["tags"]])
        data = resources.files(__package__).joinpath(ds["file"])
        with data.open("rb") as fh:
            ckan.action.resource_create(package_id=pkg["id"], name=ds["resource"], format="CSV",
                                        upload=(ds["file"], fh))
        created.append(ds["name"])
        log.info("demo dataset %s uploaded", ds["name"])
    return created
