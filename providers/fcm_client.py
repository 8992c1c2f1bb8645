"""pyfcm builds each FCM HTTP v1 message; one aiohttp session per process posts it, once.

pyfcm 2.1.1 sleeps on Retry-After and re-posts without limit, fetches a new access token
per thread, and its async helper starts its own event loop; none of that may happen inside
an RQ job, so pyfcm only renders bytes and the URL here. `requests` remains only for the
OAuth token fetch (google-auth's transport). This module only moves bytes: it never
classifies answers and never logs a token.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from typing import Any, NoReturn

import aiohttp
import google.auth.transport.requests
import requests
from google.oauth2 import service_account
from pyfcm import FCMNotification
from requests.adapters import HTTPAdapter
from yarl import URL

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


class _BoundedRequest(google.auth.transport.requests.Request):
    """google-auth's transport with a short timeout (its default is 120 s per attempt)."""

    def __init__(self, session: requests.Session, timeout: float) -> None:
        super().__init__(session)
        self._timeout = timeout

    def __call__(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: Any = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Any:
        bounded = self._timeout if timeout is None else min(timeout, self._timeout)
        return super().__call__(url, method, body, headers, bounded, **kwargs)


class AccessTokenSource:
    """One OAuth2 access token for every send, fetched from the service account's token_uri
    only when missing or about to expire (google-auth's `valid` keeps a margin). Blocking:
    call it from a job thread, never from the event loop."""

    def __init__(self, credentials: service_account.Credentials, timeout: float = 10.0) -> None:
        self._credentials = credentials
        self._lock = threading.Lock()
        self._session = requests.Session()
        self._session.mount("https://", HTTPAdapter(max_retries=0))
        self._session.mount("http://", HTTPAdapter(max_retries=0))
        self._request = _BoundedRequest(self._session, timeout)
        self.fetches = 0

    def get(self) -> str:
        """Raises google.auth.exceptions.RefreshError / TransportError when it cannot."""
        credentials = self._credentials
        if credentials.valid:
            return str(credentials.token)
        with self._lock:
            if not credentials.valid:
                credentials.refresh(self._request)
                self.fetches += 1
            return str(credentials.token)

    def invalidate(self, stale: str) -> None:
        """FCM said the token expired before google-auth thought so: fetch anew next time."""
        with self._lock:
            if self._credentials.token == stale:
                self._credentials.token = None

    def close(self) -> None:
        self._session.close()


class SingleAttemptFCM(FCMNotification):
    """FCMNotification pointed at `endpoint`, used to build messages (`parse_payload`) and
    the URL (`fcm_end_point`) only: FCMTransport posts them. pyfcm's own senders would sleep
    and re-post, so they refuse to run."""

    def __init__(
        self,
        credentials: service_account.Credentials,
        project_id: str | None,
        endpoint: str,
        tokens: AccessTokenSource,
    ) -> None:
        super().__init__(credentials=credentials, project_id=project_id)
        # pyfcm builds its URL from this attribute: {FCM_END_POINT_BASE}/{project}/messages:send
        self.FCM_END_POINT_BASE = endpoint.rstrip("/") + "/v1/projects"
        self._tokens = tokens

    def _get_access_token(self) -> str:
        return self._tokens.get()

    def send_request(self, payload: Any = None, timeout: Any = None) -> NoReturn:
        raise NotImplementedError("pyfcm's sender retries and sleeps: use FCMTransport.post")

    def send_async_request(self, params_list: Any, timeout: Any) -> NoReturn:
        raise NotImplementedError("pyfcm's sender retries and sleeps: use FCMTransport.post")


@dataclass(frozen=True)
class FCMAnswer:
    """What FCM said to one POST, unparsed."""

    status: int
    body: bytes
    retry_after: str | None
    latency_ms: float  # from taking a slot to the last byte of the answer


class FCMTransport:
    """One aiohttp session posting to one URL: a keep-alive pool of at most `limit`
    connections and at most `limit` requests in flight, however many batches share it.
    Build it (`open`), use it and close it on one event loop."""

    def __init__(self, url: str, limit: int, connect_timeout: float, read_timeout: float) -> None:
        self._url = URL(url)  # parsed once, not per request
        self._slots = asyncio.Semaphore(limit)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=limit),
            # sock_* as requests' (connect, read); `total` caps a server that trickles bytes.
            # The semaphore keeps pool waits out of these clocks.
            timeout=aiohttp.ClientTimeout(
                total=connect_timeout + read_timeout,
                sock_connect=connect_timeout,
                sock_read=read_timeout,
            ),
            cookie_jar=aiohttp.DummyCookieJar(),  # FCM sets none; skip the per-request work
            trust_env=False,  # no proxy lookups from the environment per request
        )

    @classmethod
    async def open(
        cls, url: str, limit: int, connect_timeout: float, read_timeout: float
    ) -> FCMTransport:
        """The session binds to the running loop, so it is built from a coroutine on it."""
        return cls(url, limit, connect_timeout, read_timeout)

    async def post(self, payload: bytes, access_token: str) -> FCMAnswer:
        """One POST of `payload` exactly as given, whatever FCM answers (no retry, no sleep).
        Raises TimeoutError, aiohttp.ClientError or OSError when there is no answer."""
        headers = {"Content-Type": "application/json", "Authorization": "Bearer " + access_token}
        async with self._slots:
            started = time.monotonic()
            async with self._session.post(
                self._url, data=payload, headers=headers, allow_redirects=False
            ) as response:
                body = await response.read()
            return FCMAnswer(
                response.status,
                body,
                response.headers.get("Retry-After"),
                (time.monotonic() - started) * 1000,
            )

    async def close(self) -> None:
        await self._session.close()
