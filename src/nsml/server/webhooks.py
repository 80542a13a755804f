"""Delivering notifications to the webhooks users set with ``nsml notify``.

Delivery runs on a few worker threads fed by a bounded queue, never on a request's or a
runner's thread: a slow or dead endpoint delays nothing but its own notifications. Each
POST has a short timeout and a few retries with backoff; redirects are not followed (a
webhook answers where it was set) and no proxy is used. Failures are logged with the
endpoint's host and the HTTP status or error class only: the URL's path may hold the
webhook's secret, and what an endpoint answers is never read or logged.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from nsml._version import __version__

log = logging.getLogger("nsml.server.webhooks")

MAX_URL_LENGTH = 2048
QUEUE_SIZE = 1000
WORKERS = 2


class InvalidWebhook(ValueError):
    """The URL cannot be a webhook; the message says why without repeating it."""


def validate_webhook(url: str) -> str:
    """The URL to store: http(s), a host, bounded, no spaces or control characters."""
    url = url.strip()
    if not url:
        raise InvalidWebhook("the webhook URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidWebhook(f"the webhook URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url) or not url.isascii():
        raise InvalidWebhook(
            "the webhook URL holds spaces, control or non-ASCII characters; percent-encode them"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise InvalidWebhook("the webhook URL cannot be parsed") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidWebhook("the webhook URL must start with http:// or https://")
    if not parts.hostname:
        raise InvalidWebhook("the webhook URL has no host")
    if parts.fragment:
        raise InvalidWebhook("the webhook URL must not have a #fragment")
    return url


def host_of(url: str) -> str:
    """What logs name a webhook by: its host (and port), never its path or query."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    except ValueError:
        return "an invalid URL"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is an answer like any other: not delivered


@dataclass(frozen=True)
class Delivery:
    url: str
    payload: dict[str, Any]


class WebhookSender:
    """A bounded queue of POSTs and the threads that send them.

    ``resolve`` turns what :meth:`send` was given into deliveries (it reads the store), so
    the caller's thread does no more than put one item in the queue.
    """

    def __init__(
        self,
        resolve: Callable[[str], list[str]],
        timeout_s: float = 5.0,
        attempts: int = 3,
        backoff_s: float = 1.0,
    ) -> None:
        self.resolve = resolve
        self.timeout_s = timeout_s
        self.attempts = max(1, attempts)
        self.backoff_s = backoff_s
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue(QUEUE_SIZE)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())

    def start(self) -> None:
        for number in range(WORKERS):
            thread = threading.Thread(target=self._work, name=f"nsml-webhook-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 3.0) -> None:
        """Send what is queued (the sessions a shutdown ended, say) once each, without
        retries, for up to ``timeout`` seconds; then leave the rest (best effort)."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for _ in self._threads:
            try:
                self._queue.put(None, timeout=max(0.0, deadline - time.monotonic()))
            except queue.Full:
                break
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def send(self, account: str, payload: dict[str, Any]) -> None:
        """Queue ``payload`` for the webhooks of ``account``; never blocks, never raises."""
        try:
            self._queue.put_nowait((account, payload))
        except queue.Full:
            log.warning("notification queue full; dropped a %s notification", payload.get("event"))

    # workers ------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            account, payload = item
            try:
                urls = self.resolve(account)
            except Exception:  # the store went away at shutdown, say: never kill the worker
                log.exception("could not look up the webhooks of a notification")
                continue
            for url in urls:
                self._deliver(Delivery(url, payload))

    def _deliver(self, delivery: Delivery) -> bool:
        body = json.dumps(delivery.payload, default=str).encode()
        problem, tried = "", 0
        for attempt in range(self.attempts):
            if attempt and self._stop.wait(self.backoff_s * 2 ** (attempt - 1)):
                break  # shutting down: no more retries
            retry, problem = self._post(delivery.url, body)
            tried += 1
            if not problem:
                return True
            if not retry:
                break
        log.warning(
            "webhook %s notification to %s failed after %d attempt(s): %s",
            delivery.payload.get("event"),
            host_of(delivery.url),
            tried,
            problem,
        )
        return False

    def _post(self, url: str, body: bytes) -> tuple[bool, str]:
        """("", ...) when delivered; else (whether to try again, what went wrong)."""
        request = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": f"OpenNSML/{__version__}"},
        )
        started = time.monotonic()
        try:
            with self._opener.open(request, timeout=self.timeout_s) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()  # its body is never read
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            what = type(reason).__name__ if not isinstance(reason, str) else "error"
            if time.monotonic() - started >= self.timeout_s:
                what = f"timed out after {self.timeout_s:g} s"
            return True, what
        if 200 <= status < 300:
            return False, ""
        return status in (408, 429) or status >= 500, f"HTTP {status}"
