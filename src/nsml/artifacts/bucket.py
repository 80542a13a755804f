"""One bucket of an S3-protocol object store, through boto3 (the optional ``s3`` extra).

Amazon S3, MinIO, Ceph's RADOS gateway and moto all speak this protocol; which one is
used is only a question of ``NSML_S3_ENDPOINT_URL``. Credentials come from boto3's usual
chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a profile, an instance role), so
none is ever stored by the platform.

Every key is built by :meth:`Bucket.key` from parts that are checked again here (names
the services validated already): a part can never be empty, ``.`` or ``..`` nor hold a
``/``, so nothing a user names can reach outside the configured prefix. An object is
visible only once completely written (a PUT, or a multipart upload, is atomic in S3),
which is what makes a checkpoint either whole or absent for every server.

Any failure of the store itself is raised as :class:`ObjectStoreError`, one line saying
what failed; it never carries an object's content.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nsml.artifacts.safe_io import open_regular

# a multipart upload above this size, in parts of this size: a 4 GiB checkpoint is 64
# parts, each retried on its own should the connection drop
MULTIPART_BYTES = 64 * 1024 * 1024
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_KEY_PART = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
_MISSING = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}


class ObjectStoreError(OSError):
    """The object store refused or could not be reached; the message is one line."""


class BadObjectKey(ValueError):
    """A name that no object key may be built from (empty, ``.``, ``..`` or holding ``/``)."""


@dataclass(frozen=True)
class BucketLocation:
    """``s3://BUCKET/PREFIX`` as ``NSML_ARTIFACTS`` gives it."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> BucketLocation:
        if not url.startswith("s3://"):
            raise ValueError(f"NSML_ARTIFACTS must look like s3://BUCKET/PREFIX, not {url[:200]!r}")
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not _BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
            raise ValueError(
                f"{bucket[:100]!r} is not a bucket name: use 3-63 lowercase letters, digits, '.' or '-'"
            )
        parts = [part for part in prefix.split("/") if part]
        for part in parts:
            check_key_part(part)
        return cls(bucket, "/".join(parts))


def check_key_part(part: str) -> str:
    """One segment of an object key; BadObjectKey for one that could leave its folder."""
    if not _KEY_PART.fullmatch(part) or ".." in part or part.startswith("."):
        raise BadObjectKey(f"{part[:64]!r} cannot name an object: use letters, digits, '_', '.', ':' or '-'")
    return part


class Bucket:
    """The bucket and prefix all of this platform's objects live under."""

    def __init__(self, location: BucketLocation, endpoint_url: str | None = None, attempts: int = 3) -> None:
        try:
            import boto3
            from boto3.s3.transfer import TransferConfig
            from botocore.config import Config
        except ImportError:
            raise ObjectStoreError(
                "NSML_ARTIFACTS=s3://... needs boto3: pip install 'opennsml[s3]'"
            ) from None
        self.location = location
        self.endpoint_url = endpoint_url or None
        config = Config(
            connect_timeout=5, read_timeout=60, retries={"max_attempts": attempts, "mode": "standard"}
        )
        self.client: Any = boto3.client("s3", endpoint_url=self.endpoint_url, config=config)
        self.transfer = TransferConfig(
            multipart_threshold=MULTIPART_BYTES, multipart_chunksize=MULTIPART_BYTES
        )

    def __str__(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.location.bucket}/{self.location.prefix}{where}"

    def key(self, *parts: str) -> str:
        """The object key of ``parts`` under the prefix, each part checked."""
        checked = [check_key_part(part) for part in parts]
        return "/".join([self.location.prefix, *checked] if self.location.prefix else checked)

    def check(self) -> None:
        """ObjectStoreError, one line, unless the bucket answers and may be listed."""
        self._call("reach", lambda: self.client.list_objects_v2(Bucket=self.location.bucket, MaxKeys=1))

    # writing ---------------------------------------------------------------------------
    def upload(self, path: Path, key: str) -> None:
        """A local file (never through a link), in parts when large; visible once complete."""
        with open_regular(path) as handle:
            self._call(
                f"store {key}",
                lambda: self.client.upload_fileobj(handle, self.location.bucket, key, Config=self.transfer),
            )

    def put(self, key: str, data: bytes) -> None:
        self._call(
            f"store {key}", lambda: self.client.put_object(Bucket=self.location.bucket, Key=key, Body=data)
        )

    def delete(self, key: str) -> None:
        self._call(f"delete {key}", lambda: self.client.delete_object(Bucket=self.location.bucket, Key=key))

    def delete_under(self, *parts: str) -> None:
        """Every object whose key starts with the folder ``parts``."""
        batch: list[dict[str, str]] = []
        for key in self.keys_under(*parts):
            batch.append({"Key": key})
            if len(batch) == 1000:  # the most one request may delete
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def _delete_batch(self, batch: list[dict[str, str]]) -> None:
        self._call(
            "delete objects",
            lambda: self.client.delete_objects(
                Bucket=self.location.bucket, Delete={"Objects": batch, "Quiet": True}
            ),
        )

    # reading ---------------------------------------------------------------------------
    def keys_under(self, *parts: str) -> Iterator[str]:
        """Every key in the folder ``parts``; with none, every key under the prefix."""
        top = self.key(*parts)
        folder = top + "/" if top else ""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = self._call(
            f"list {folder}", lambda: list(paginator.paginate(Bucket=self.location.bucket, Prefix=folder))
        )
        for page in pages:
            for item in page.get("Contents", []):
                yield str(item["Key"])

    def relative(self, key: str) -> str:
        """``key`` without the prefix: where it lies whatever the prefix."""
        prefix = self.location.prefix
        return key[len(prefix) + 1 :] if prefix and key.startswith(prefix + "/") else key

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self._call(
                f"read {key}", lambda: self.client.head_object(Bucket=self.location.bucket, Key=key)
            )
        except _Missing:
            return None
        return head

    def size(self, key: str) -> int | None:
        """The object's size, None when there is none."""
        head = self._head(key)
        return None if head is None else int(head["ContentLength"])

    def etag(self, key: str) -> str | None:
        """What changes whenever the object is written again; None when there is none."""
        head = self._head(key)
        return None if head is None else str(head["ETag"])

    def get(self, key: str) -> bytes | None:
        """A small object's bytes (a pointer), None when there is none."""
        try:
            reply = self._call(
                f"read {key}", lambda: self.client.get_object(Bucket=self.location.bucket, Key=key)
            )
        except _Missing:
            return None
        return bytes(reply["Body"].read())

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``start``; nothing past the end or when there is none."""
        size = self.size(key)
        if size is None or start >= size or length <= 0:
            return b""
        end = min(size, start + length) - 1
        try:
            reply = self._call(
                f"read {key}",
                lambda: self.client.get_object(
                    Bucket=self.location.bucket, Key=key, Range=f"bytes={start}-{end}"
                ),
            )
        except _Missing:
            return b""
        return bytes(reply["Body"].read())

    def download(self, key: str, target: Path) -> bool:
        """The object into the new file ``target`` (written aside, then renamed); False
        when there is no such object."""
        partial = target.with_name(f".{target.name}.part-{uuid.uuid4().hex}")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._call(
                f"read {key}",
                lambda: self.client.download_file(
                    self.location.bucket, key, str(partial), Config=self.transfer
                ),
            )
            os.replace(partial, target)
            return True
        except _Missing:
            return False
        finally:
            partial.unlink(missing_ok=True)

    def _call(self, what: str, action: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return action()
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in _MISSING and code != "NoSuchBucket":
                raise _Missing(what) from None
            message = str(error.get("Message") or code).splitlines()[0][:200]
            raise ObjectStoreError(f"the object store {self} could not {what}: {code} {message}") from None
        except BotoCoreError as exc:
            reason = str(exc).splitlines()[0][:200]
            raise ObjectStoreError(f"the object store {self} could not {what}: {reason}") from None


class _Missing(LookupError):
    """No such object: the callers above turn it into None, False or b""."""
