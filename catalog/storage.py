"""The one object-storage interface, over any S3 endpoint (SeaweedFS by default).

Everything else talks to :class:`ObjectStore`; it hides the minio client and
builds the pyarrow filesystem that DuckDB reads Parquet through.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import urllib.parse
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from minio import Minio
from minio.commonconfig import CopySource
from minio.error import S3Error

from catalog.errors import PayloadTooLarge
from catalog.settings import Settings

PART_SIZE = 16 * 1024 * 1024


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    sha256: str


class HashingReader:
    """Wraps a stream, counting and hashing what is read through it, and enforcing a size cap."""

    def __init__(self, stream: BinaryIO, limit: int | None = None) -> None:
        self._stream = stream
        self._limit = limit
        self.size = 0
        self._hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        chunk = self._stream.read(n)
        if chunk:
            self.size += len(chunk)
            if self._limit is not None and self.size > self._limit:
                raise PayloadTooLarge(f"The upload exceeds the limit of {self._limit} bytes.")
            self._hash.update(chunk)
        return chunk

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class ObjectStore:
    """A bucket on an S3 endpoint."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, region: str = "us-east-1") -> None:
        parsed = urllib.parse.urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
        self.endpoint = f"{parsed.scheme}://{parsed.netloc}"
        self._secure = parsed.scheme == "https"
        self._netloc = parsed.netloc
        self._access_key = access_key
        self._secret_key = secret_key
        self.bucket = bucket
        self.region = region
        self.client = Minio(parsed.netloc, access_key=access_key, secret_key=secret_key,
                            secure=self._secure, region=region)

    @classmethod
    def from_settings(cls, settings: Settings) -> "ObjectStore":
        if not (settings.s3_endpoint and settings.s3_access_key and settings.s3_secret_key):
            raise ValueError("object storage is not configured (MOSU_S3_ENDPOINT and keys)")
        return cls(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                   settings.s3_bucket, settings.s3_region)

    def ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)

    def put_stream(self, key: str, stream: BinaryIO, limit: int | None = None) -> StoredObject:
        """Stream to ``key`` in parts (bounded memory), returning its size and SHA-256."""
        reader = HashingReader(stream, limit)
        self.client.put_object(self.bucket, key, reader, length=-1, part_size=PART_SIZE)
        return StoredObject(key, reader.size, reader.sha256)

    def put_file(self, key: str, path: str, content_type: str = "application/octet-stream") -> None:
        self.client.fput_object(self.bucket, key, path, content_type=content_type, part_size=PART_SIZE)

    def download(self, key: str, path: str) -> None:
        """Copy an object to a local file, streaming."""
        self.client.fget_object(self.bucket, key, path)

    def copy(self, src: str, dst: str) -> None:
        self.client.copy_object(self.bucket, dst, CopySource(self.bucket, src))

    def size(self, key: str) -> int | None:
        try:
            return self.client.stat_object(self.bucket, key).size
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NotFound", "NoSuchObject"):
                return None
            raise

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def remove(self, key: str) -> None:
        self.client.remove_object(self.bucket, key)

    def list(self, prefix: str) -> Iterator[str]:
        for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
            yield obj.object_name

    def list_with_times(self, prefix: str) -> Iterator[tuple[str, dt.datetime]]:
        """Keys under ``prefix`` with their last-modified time (UTC)."""
        for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
            yield obj.object_name, obj.last_modified

    def presigned_get(self, key: str, expires: dt.timedelta, filename: str) -> str:
        """A GET URL for one object, valid for ``expires``, that downloads as ``filename``."""
        quoted = urllib.parse.quote(filename, safe="")
        return self.client.presigned_get_object(
            self.bucket, key, expires=expires,
            response_headers={"response-content-disposition": f"attachment; filename*=UTF-8''{quoted}"})

    # -- multipart uploads straight from clients (minio exposes these calls as private) --------

    def multipart_start(self, key: str) -> str:
        return self.client._create_multipart_upload(self.bucket, key, {"Content-Type": "application/octet-stream"})

    def multipart_part_url(self, key: str, upload_id: str, part_number: int, expires: dt.timedelta) -> str:
        """A presigned PUT for one part: the client uploads it without going through Mosu."""
        return self.client.get_presigned_url("PUT", self.bucket, key, expires=expires, extra_query_params={
            "uploadId": upload_id, "partNumber": str(part_number)})

    def multipart_parts(self, key: str, upload_id: str) -> list[tuple[int, int, str]]:
        """(part number, size, etag) of the parts stored so far: what a resumed upload can skip."""
        parts, marker = [], None
        while True:
            result = self.client._list_parts(self.bucket, key, upload_id, max_parts=1000, part_number_marker=marker)
            parts += [(p.part_number, p.size, p.etag) for p in result.parts]
            if not result.is_truncated:
                return parts
            marker = str(result.next_part_number_marker)

    def multipart_complete(self, key: str, upload_id: str, parts: list[tuple[int, int, str]]) -> None:
        from minio.datatypes import Part

        self.client._complete_multipart_upload(self.bucket, key, upload_id,
                                               [Part(number, etag) for number, _, etag in parts])

    def multipart_abort(self, key: str, upload_id: str) -> None:
        self.client._abort_multipart_upload(self.bucket, key, upload_id)

    def sha256(self, key: str) -> tuple[int, str]:
        """Size and SHA-256 of an object, read as a stream (bounded memory)."""
        digest, size = hashlib.sha256(), 0
        resp = self.client.get_object(self.bucket, key)
        try:
            for chunk in resp.stream(PART_SIZE):
                digest.update(chunk)
                size += len(chunk)
        finally:
            resp.close()
            resp.release_conn()
        return size, digest.hexdigest()

    def arrow_filesystem(self):
        """A pyarrow S3 filesystem on the same endpoint, for DuckDB to scan Parquet through."""
        from pyarrow import fs

        return fs.S3FileSystem(
            access_key=self._access_key, secret_key=self._secret_key,
            endpoint_override=self._netloc, scheme="https" if self._secure else "http",
            region=self.region, allow_bucket_creation=False, allow_bucket_deletion=False,
        )

    def arrow_path(self, key: str) -> str:
        return f"{self.bucket}/{key}"
