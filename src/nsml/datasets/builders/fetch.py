"""Downloads of upstream files: streamed with a progress bar, checked, cached.

A download lands in ``<cache>/<hash of the URL>/<file name>`` only once it is complete
and its sha256 matches, so an interrupted or corrupted download is never reused.
A URL may carry its expected checksum pip-style, as ``...#sha256=<hex>``.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from nsml.datasets.builders.base import BuildError

_CHUNK = 1 << 20
_HREF = re.compile(r"""href\s*=\s*["']([^"'?#]+)["']""", re.IGNORECASE)
progress_console = Console(stderr=True)


def is_url(source: str) -> bool:
    return urlparse(source).scheme in ("http", "https")


def file_name(url: str) -> str:
    return unquote(Path(urlparse(urldefrag(url).url).path).name)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _expected(url: str, sha256: str | None) -> str | None:
    fragment = urldefrag(url).fragment
    if fragment.startswith("sha256="):
        return fragment.removeprefix("sha256=").lower()
    return sha256.lower() if sha256 else None


def download(url: str, cache_dir: Path, sha256: str | None = None) -> Path:
    """The local copy of ``url``, fetched unless a verified copy is cached."""
    expected = _expected(url, sha256)
    plain = urldefrag(url).url
    name = file_name(plain) or "index"
    target = cache_dir / hashlib.sha256(plain.encode()).hexdigest()[:16] / name
    if target.is_file() and (expected is None or sha256_of(target) == expected):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    try:
        with httpx.stream("GET", plain, follow_redirects=True, timeout=60) as response:
            if response.status_code != 200:
                raise BuildError(f"download of {plain} failed: HTTP {response.status_code}")
            total = int(response.headers.get("content-length", 0)) or None
            with _bar() as bar, partial.open("wb") as handle:
                task = bar.add_task(name, total=total)
                for chunk in response.iter_bytes(_CHUNK):
                    handle.write(chunk)
                    digest.update(chunk)
                    bar.advance(task, len(chunk))
    except httpx.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise BuildError(
            f"download of {plain} failed: {exc}; check the URL or pass a local --source"
        ) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    actual = digest.hexdigest()
    if expected is not None and actual != expected:
        partial.unlink(missing_ok=True)
        raise BuildError(
            f"checksum mismatch for {plain}: expected sha256 {expected}, got {actual}; "
            "the file is not the published one (retry, or pass a trusted local copy with --source)"
        )
    partial.replace(target)
    return target


def listed_files(folder_url: str, suffix: str) -> list[str]:
    """URLs of the files a folder URL's index page links to (python -m http.server, autoindex)."""
    base = folder_url if folder_url.endswith("/") else folder_url + "/"
    try:
        response = httpx.get(base, follow_redirects=True, timeout=60)
    except httpx.HTTPError as exc:
        raise BuildError(f"cannot list {base}: {exc}") from None
    if response.status_code != 200:
        raise BuildError(f"cannot list {base}: HTTP {response.status_code}")
    page = str(response.url) if str(response.url).endswith("/") else base
    links = {urljoin(page, href) for href in _HREF.findall(response.text)}
    files = sorted(
        u for u in links if u.startswith(page) and u.endswith(suffix) and "/" not in u[len(page) :]
    )
    if not files:
        raise BuildError(f"{base} links to no *{suffix} files; give a folder index or a single file URL")
    return files


def _bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=progress_console,
        transient=True,
    )
