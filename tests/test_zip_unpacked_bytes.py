"""A ZIP archive is judged by the bytes it really unpacks to, not only by what its directory declares.

README: "Its directory is checked before anything is unpacked (... a declared size over the limits
are refused, naming the entry), and the bytes actually unpacked are counted against the same
limits." An archive whose local and central headers understate a member's size passes the
directory check; only counting the real bytes while unpacking can stop it.
"""
from __future__ import annotations

import io
import struct
import zipfile

import ckanapi
import pytest
from sqlalchemy import select

from catalog.db.models import ResourceVersion
from tests.conftest import wait_for_ingest

LOCAL_SIZE = 22    # offset of the uncompressed size in a local file header (PK\3\4)
CENTRAL_SIZE = 24  # and in a central directory header (PK\1\2)
CENTRAL_NAME_LEN = 28
CENTRAL_FIXED = 46


def understated(entries: dict[str, bytes], declared: dict[str, int]) -> bytes:
    """A deflated ZIP of ``entries`` whose headers claim the sizes in ``declared`` instead of the real
    ones (both the local header and the central directory are patched; the CRC stays the real one)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    data = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        for info in zf.infolist():
            if info.filename in declared:
                assert data[info.header_offset:info.header_offset + 4] == b"PK\x03\x04"
                struct.pack_into("<I", data, info.header_offset + LOCAL_SIZE, declared[info.filename])
    patched, pos = 0, data.find(b"PK\x01\x02")
    while pos >= 0:
        name_len = struct.unpack_from("<H", data, pos + CENTRAL_NAME_LEN)[0]
        name = bytes(data[pos + CENTRAL_FIXED:pos + CENTRAL_FIXED + name_len]).decode()
        if name in declared:
            struct.pack_into("<I", data, pos + CENTRAL_SIZE, declared[name])
            patched += 1
        pos = data.find(b"PK\x01\x02", pos + CENTRAL_FIXED + name_len)
    assert patched == len(declared)
    out = bytes(data)
    with zipfile.ZipFile(io.BytesIO(out)) as zf:  # what a reader of the directory now believes
        assert {i.filename: i.file_size for i in zf.infolist() if i.filename in declared} == declared
    return out


@pytest.fixture(scope="module")
def ckan(mosu):
    return mosu.admin_with_dataset("zip-sizes")


def _ingest(ckan, content: bytes, filename: str) -> dict:
    res = ckan.action.resource_create(package_id="zip-sizes", upload=(filename, io.BytesIO(content)))
    return wait_for_ingest(ckan, res["id"])


def _assert_nothing_published(mosu, ckan, res: dict, data: bytes) -> None:
    """Failed, no Parquet written for it (published or staged), no rows served, the raw upload kept."""
    assert res["ingest_status"] == "failed" and res["datastore_active"] is False
    job = ckan.action.ingest_status_show(id=res["id"])
    assert (job["state"], job["version_status"]) == ("failed", "failed")
    platform = mosu.inspect()
    with platform.read() as s:
        versions = list(s.scalars(select(ResourceVersion).where(ResourceVersion.resource_id == res["id"])))
    assert [(v.status, v.parquet_key) for v in versions] == [("failed", None)]
    assert platform.store.size(versions[0].raw_key) == len(data), "the raw upload is kept as it came"
    assert list(platform.store.list(f"parquet/{res['id']}/")) == []
    assert list(platform.store.list(f"staging/{job['job_id']}/")) == []
    with pytest.raises(ckanapi.NotFound) as refused:
        ckan.action.datastore_search(resource_id=res["id"])
    assert str(refused.value) == f'Resource "{res["id"]}" was not found in the datastore (ingest failed)'


def test_an_archive_understating_its_sizes_is_refused_by_the_bytes_it_unpacks(mosu, ckan):
    real = b"n,v\n" + b"1,0\n" * (2 * 1024 * 1024)  # 8 MiB of rows, deflated to a few KB
    data = understated({"rows.csv": real}, {"rows.csv": 100_000})
    limit = min(mosu.settings.max_unpacked_bytes, len(data) * mosu.settings.max_unpack_ratio)
    assert 100_000 < limit < len(real), "the declared size passes the directory check; the real one does not"
    res = _ingest(ckan, data, "understated.zip")
    assert res["ingest_error"] == (f"The ZIP archive unpacks to more than {limit:,} bytes (while reading "
                                   "'rows.csv'); it was refused as a possible ZIP bomb.")
    _assert_nothing_published(mosu, ckan, res, data)


def test_a_tiny_declared_size_does_not_hide_the_rest_of_the_member(mosu, ckan):
    # Declaring fewer bytes than the first read: the member still unpacks to its real size.
    real = b"n,v\n" + b"2,0\n" * (2 * 1024 * 1024)
    data = understated({"notes.txt": b"not a table\n", "rows.csv": real}, {"rows.csv": 64})
    limit = min(mosu.settings.max_unpacked_bytes, len(data) * mosu.settings.max_unpack_ratio)
    res = _ingest(ckan, data, "tiny-declared.zip")
    assert res["ingest_error"] == (f"The ZIP archive unpacks to more than {limit:,} bytes (while reading "
                                   "'rows.csv'); it was refused as a possible ZIP bomb.")
    _assert_nothing_published(mosu, ckan, res, data)


def test_a_member_whose_real_size_differs_from_its_directory_is_damaged(mosu, ckan):
    # Under every limit, but the directory lies: half a table is never published as the table.
    real = b"n,v\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(5000))
    for declared, name in ((len(real) // 2, "fewer.zip"), (len(real) + 1000, "more.zip")):
        data = understated({"rows.csv": real}, {"rows.csv": declared})
        res = _ingest(ckan, data, name)
        assert res["ingest_error"] == (f"The ZIP archive is damaged: 'rows.csv' declares {declared:,} bytes "
                                       f"but holds {len(real):,}."), name
        _assert_nothing_published(mosu, ckan, res, data)
