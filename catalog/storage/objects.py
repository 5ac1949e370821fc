"""The one object-storage interface, over any S3 endpoint (SeaweedFS by default).

Everything else talks to :class:`ObjectStore`; it hides the minio client and
builds the pyarrow filesystem that DuckDB reads Parquet through.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import hashlib
import logging
import os
import urllib.parse
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.datatypes import Part
from minio.error import S3Error

from catalog.core.errors import PayloadTooLarge, StorageUnavailable, StoredDataMissing
from catalog.core.settings import Settings

log = logging.getLogger(__name__)

MIB = 1024 * 1024
GIB = 1024 * MIB
PART_SIZE = 16 * MIB
"""Part size of :meth:`ObjectStore.put_stream` (uploads through the API: memory per request matters)."""

# Transfer tuning of the ingest worker's objects (raw download, Parquet put and copy), chosen by
# measurement with bench/storage.py on the embedded SeaweedFS on 2 cores (figures in that docstring).
TRANSFER_THREADS = Settings.s3_transfer_threads
"""Ranged GETs (download) or parts (put) in flight; configurable, so its default lives in Settings."""
DOWNLOAD_RANGE = 64 * MIB
"""Bytes per ranged GET; an object no larger than this is fetched in one request."""
READ_SIZE = 1 * MIB
"""Bytes per read from a response and per ``pwrite``: the memory a download thread holds."""
UPLOAD_PART_SIZE = 16 * MIB
"""Part size of :meth:`ObjectStore.put_file`. minio buffers up to threads + 1 parts in memory, and
16-128 MiB parts measured the same (SeaweedFS's CPU bounds the put), so the small one."""
COPY_SINGLE_MAX = 5 * GIB
"""The largest source S3's CopyObject accepts; a larger one is copied part by part (UploadPartCopy)."""
COPY_PART_SIZE = 1 * GIB
"""Part size of a multipart server-side copy (S3 allows 5 MiB to 5 GiB)."""
COPY_THREADS = 2
"""Part copies of one multipart copy in flight (server work: no faster than CopyObject on SeaweedFS)."""
MIN_PART = 5 * MIB
MAX_PARTS = 10_000
MISSING = frozenset({"NoSuchKey", "NotFound", "NoSuchObject"})
"""S3 error codes that say an object is not there."""


def missing(key: str, cause: object) -> StoredDataMissing:
    """The error for an object the catalog records and storage does not hold; the key (internal ids
    only) goes to the operator's log, not to the caller."""
    log.error("object storage does not hold %s, which the catalog records: %s", key, cause)
    return StoredDataMissing("The stored data of this version is missing from object storage, so it cannot be "
                             "served; the site's operators have been told")


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

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, region: str = "us-east-1",
                 transfer_threads: int = TRANSFER_THREADS) -> None:
        parsed = urllib.parse.urlparse(endpoint if "://" in endpoint else f"http://{endpoint}")
        self.endpoint = f"{parsed.scheme}://{parsed.netloc}"
        self._secure = parsed.scheme == "https"
        self._netloc = parsed.netloc
        self._access_key = access_key
        self._secret_key = secret_key
        self.bucket = bucket
        self.region = region
        self.transfer_threads = max(1, transfer_threads)
        self.client = Minio(parsed.netloc, access_key=access_key, secret_key=secret_key,
                            secure=self._secure, region=region)

    @classmethod
    def from_settings(cls, settings: Settings) -> "ObjectStore":
        if not (settings.s3_endpoint and settings.s3_access_key and settings.s3_secret_key):
            raise ValueError("object storage is not configured (MOSU_S3_ENDPOINT and keys)")
        return cls(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                   settings.s3_bucket, settings.s3_region, settings.s3_transfer_threads)

    @contextlib.contextmanager
    def _reachable(self, outcome: str) -> Iterator[None]:
        """Turn a failure to reach the endpoint (refused, reset, timed out: urllib3's errors, after
        minio's retries) into :class:`StorageUnavailable` saying ``outcome``, with the cause logged:
        an upload then answers 503 instead of an anonymous 500, and a worker's job shows why it waits."""
        try:
            yield
        except urllib3.exceptions.HTTPError as exc:
            log.warning("object storage at %s unreachable (%s): %s", self.endpoint, outcome, exc)
            raise StorageUnavailable(f"Object storage is unavailable: {outcome}. Try again later.") from exc

    def ensure_bucket(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            self.client.make_bucket(self.bucket)

    def put_stream(self, key: str, stream: BinaryIO, limit: int | None = None) -> StoredObject:
        """Stream to ``key`` in parts (bounded memory), returning its size and SHA-256."""
        reader = HashingReader(stream, limit)
        with self._reachable("the upload was not stored"):
            self.client.put_object(self.bucket, key, reader, length=-1, part_size=PART_SIZE)
        return StoredObject(key, reader.size, reader.sha256)

    def put_file(self, key: str, path: str, content_type: str = "application/octet-stream",
                 part_size: int = UPLOAD_PART_SIZE, threads: int | None = None) -> None:
        """Upload a local file, ``threads`` parts at a time (default: the store's transfer threads)."""
        self.client.fput_object(self.bucket, key, path, content_type=content_type, part_size=part_size,
                                num_parallel_uploads=threads or self.transfer_threads)

    def download(self, key: str, path: str, threads: int | None = None, range_size: int = DOWNLOAD_RANGE,
                 read_size: int = READ_SIZE) -> None:
        """Copy an object to a local file with ``threads`` ranged GETs written in place.

        One response stream is bounded by one thread's reads; ranges fetched in parallel and
        written with ``pwrite`` into a preallocated file are not, and keep memory at
        ``threads * read_size``. Every range is pinned to the object's ETag (``If-Match``), so an
        object replaced mid-download fails instead of mixing two versions. The file is complete
        and exactly the object's size, or removed and the error raised.
        """
        with self._reachable("the object could not be read"):
            self._download(key, path, threads or self.transfer_threads, range_size, read_size)

    def _download(self, key: str, path: str, threads: int, range_size: int, read_size: int) -> None:
        try:
            stat = self.client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in MISSING:
                raise missing(key, exc) from None
            raise
        size, etag = int(stat.size), stat.etag
        starts = list(range(0, size, range_size)) or [0]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            try:
                if size:
                    os.posix_fallocate(fd, 0, size)
            except OSError:  # not supported by the file system: a sparse file does as well
                os.ftruncate(fd, size)

            def fetch(start: int) -> None:
                length = min(range_size, size - start)
                headers = {"If-Match": f'"{etag}"'} if etag else None
                resp = self.client.get_object(self.bucket, key, offset=start, length=length,
                                              request_headers=headers) if length else None
                if resp is None:
                    return
                pos = start
                try:
                    for chunk in resp.stream(read_size):
                        os.pwrite(fd, chunk, pos)
                        pos += len(chunk)
                finally:
                    resp.close()
                    resp.release_conn()
                if pos != start + length:
                    raise IOError(f"{key}: range at {start} ended after {pos - start} of {length} bytes")

            if threads <= 1 or len(starts) == 1:
                for start in starts:
                    fetch(start)
            else:
                with cf.ThreadPoolExecutor(min(threads, len(starts)), thread_name_prefix="s3-get") as pool:
                    futures = [pool.submit(fetch, start) for start in starts]
                    try:
                        for future in cf.as_completed(futures):
                            future.result()
                    except BaseException:
                        for future in futures:
                            future.cancel()
                        raise
            written = os.fstat(fd).st_size
            if written != size:
                raise IOError(f"{key}: downloaded {written} bytes of {size}")
        except BaseException:
            os.close(fd)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            raise
        os.close(fd)

    def copy(self, src: str, dst: str, single_max: int = COPY_SINGLE_MAX, part_size: int = COPY_PART_SIZE,
             threads: int = COPY_THREADS) -> None:
        """Server-side copy of any size: CopyObject up to ``single_max`` bytes, else UploadPartCopy.

        S3 refuses CopyObject for sources over 5 GiB; the multipart copy carries the
        content type over itself (CopyObject copies it with the rest of the metadata) and is
        aborted if a part fails, so no orphaned parts are left.
        """
        stat = self.client.stat_object(self.bucket, src)
        size = int(stat.size)
        if size <= single_max:
            self.client.copy_object(self.bucket, dst, CopySource(self.bucket, src))
            return
        part_size = max(part_size, MIN_PART, -(-size // MAX_PARTS))
        ranges = [(n + 1, start, min(start + part_size, size) - 1) for n, start in enumerate(range(0, size, part_size))]
        headers = {"Content-Type": stat.content_type or "application/octet-stream"}
        upload_id = self.client._create_multipart_upload(self.bucket, dst, headers)
        source = CopySource(self.bucket, src, match_etag=stat.etag)

        def copy_part(number: int, first: int, last: int) -> Part:
            part_headers = {**source.gen_copy_headers(), "x-amz-copy-source-range": f"bytes={first}-{last}"}
            etag, _ = self.client._upload_part_copy(self.bucket, dst, upload_id, number, part_headers)
            return Part(number, etag)

        try:
            with cf.ThreadPoolExecutor(max(1, threads), thread_name_prefix="s3-copy") as pool:
                parts = list(pool.map(lambda r: copy_part(*r), ranges))
            self.client._complete_multipart_upload(self.bucket, dst, upload_id, parts)
        except BaseException:
            self.client._abort_multipart_upload(self.bucket, dst, upload_id)
            raise

    def size(self, key: str) -> int | None:
        try:
            return self.client.stat_object(self.bucket, key).size
        except S3Error as exc:
            if exc.code in MISSING:
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
        self.client._complete_multipart_upload(self.bucket, key, upload_id,
                                               [Part(number, etag) for number, _, etag in parts])

    def multipart_abort(self, key: str, upload_id: str) -> None:
        self.client._abort_multipart_upload(self.bucket, key, upload_id)

    def get_bytes(self, key: str, limit: int = 1 * MIB) -> bytes | None:
        """A small object's content (``None`` when there is none); more than ``limit`` bytes is refused,
        so a planted huge object cannot exhaust memory."""
        try:
            resp = self.client.get_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NotFound", "NoSuchObject"):
                return None
            raise
        try:
            data = resp.read(limit + 1)
        finally:
            resp.close()
            resp.release_conn()
        if len(data) > limit:
            raise ValueError(f"object {key} is larger than {limit} bytes")
        return data

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
