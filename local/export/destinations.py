"""Where Parquet files go: a local directory, or an S3-compatible bucket (R2, S3) via pyarrow.fs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from local.export.errors import ExportError

DEFAULT_OUT = "export"


@dataclass(frozen=True)
class Destination:
    """A filesystem and the root the export writes under; `uri` names it (and keys its watermark)."""

    filesystem: pafs.FileSystem
    root: str
    uri: str
    creates_directories: bool = True  # object stores have no directories; creating them makes marker objects

    def path(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def make_dirs(self, path: str) -> None:
        if self.creates_directories:
            self.filesystem.create_dir(path, recursive=True)

    def files(self, under: str) -> list[str]:
        """Every file below `under` (a path from `path()`), or none if it does not exist."""
        selector = pafs.FileSelector(under, recursive=True, allow_not_found=True)
        return [i.path for i in self.filesystem.get_file_info(selector) if i.type == pafs.FileType.File]


def open_destination(out: str, env: Mapping[str, str] = os.environ) -> Destination:
    """`out` is a directory, `s3://bucket/prefix` or `r2://bucket/prefix`; S3 settings come from `env`.

    Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN); region: AWS_REGION or
    AWS_DEFAULT_REGION; endpoint: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL. For r2:// the endpoint defaults to
    https://<CLOUDFLARE_ACCOUNT_ID>.r2.cloudflarestorage.com and the region to 'auto'.
    """
    scheme = urlsplit(out).scheme.lower() if "://" in out else ""
    if scheme in ("", "file"):
        root = Path(out[len("file://") :] if scheme else out).expanduser().resolve()
        if root.exists() and not root.is_dir():
            raise ExportError(f"--out {out!r} is a file, not a directory")
        return Destination(pafs.LocalFileSystem(), root.as_posix(), root.as_uri())
    if scheme not in ("s3", "r2"):
        raise ExportError(f"--out {out!r}: expected a directory, s3://bucket/prefix or r2://bucket/prefix")
    parts = urlsplit(out)
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if not bucket:
        raise ExportError(f"--out {out!r} names no bucket")
    return Destination(
        s3_filesystem(scheme, env),
        f"{bucket}/{prefix}".rstrip("/"),
        f"{scheme}://{bucket}/{prefix}".rstrip("/"),
        creates_directories=False,
    )


def s3_filesystem(scheme: str, env: Mapping[str, str]) -> pafs.S3FileSystem:
    """An S3FileSystem configured from the environment only, so no credential ever sits in a flag or log."""
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or ""
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or ""
    key, secret = env.get("AWS_ACCESS_KEY_ID", ""), env.get("AWS_SECRET_ACCESS_KEY", "")
    if scheme == "r2":
        account = env.get("CLOUDFLARE_ACCOUNT_ID", "")
        if not endpoint and not account:
            raise ExportError("r2:// needs CLOUDFLARE_ACCOUNT_ID (or AWS_ENDPOINT_URL_S3) for R2's endpoint")
        endpoint = endpoint or f"https://{account}.r2.cloudflarestorage.com"
        region = region or "auto"
        if not (key and secret):
            raise ExportError(
                "r2:// needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (the key pair of an R2 API token)"
            )
    options: dict[str, object] = {}
    if key or secret:
        if not (key and secret):
            raise ExportError("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither")
        options.update(access_key=key, secret_key=secret, session_token=env.get("AWS_SESSION_TOKEN") or None)
    if region:
        options["region"] = region
    if endpoint:
        parsed = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ExportError(f"S3 endpoint {endpoint!r} is not an http(s) URL")
        options.update(endpoint_override=parsed.netloc, scheme=parsed.scheme)
    return pafs.S3FileSystem(**options)
