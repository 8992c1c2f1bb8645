"""pyfcm's FCM HTTP v1 client, made to post exactly once and to share one OAuth token.

pyfcm 2.1.1 sleeps on Retry-After and re-posts without limit, retries 502/503 through
urllib3, and fetches a new access token per thread; none of that may happen inside an RQ
job. This module only moves bytes: it never classifies answers and never logs a token.
"""

from __future__ import annotations

import threading
from typing import Any

import google.auth.transport.requests
import requests
from google.oauth2 import service_account
from pyfcm import FCMNotification
from requests.adapters import HTTPAdapter

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
    """One OAuth2 access token for every thread, fetched from the service account's
    token_uri only when missing or about to expire (google-auth's `valid` keeps a margin)."""

    def __init__(self, credentials: service_account.Credentials, timeout: float = 10.0) -> None:
        self._credentials = credentials
        self._lock = threading.Lock()
        session = requests.Session()
        session.mount("https://", HTTPAdapter(max_retries=0))
        session.mount("http://", HTTPAdapter(max_retries=0))
        self._request = _BoundedRequest(session, timeout)
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


class SingleAttemptFCM(FCMNotification):
    """FCMNotification pointed at `endpoint` that posts each message once and returns the raw
    response; the caller classifies it."""

    def __init__(
        self,
        credentials: service_account.Credentials,
        project_id: str | None,
        endpoint: str,
        tokens: AccessTokenSource,
        pool_size: int,
    ) -> None:
        # One adapter shared by pyfcm's per-thread sessions: one connection pool for all
        # threads, and max_retries=0 instead of pyfcm's urllib3 Retry on 502/503.
        self.adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        super().__init__(credentials=credentials, project_id=project_id, adapter=self.adapter)
        # pyfcm builds its URL from this attribute: {FCM_END_POINT_BASE}/{project}/messages:send
        self.FCM_END_POINT_BASE = endpoint.rstrip("/") + "/v1/projects"
        self._tokens = tokens

    def _get_access_token(self) -> str:
        return self._tokens.get()

    def send_request(self, payload: bytes | None = None, timeout: Any = None) -> requests.Response:
        """One POST with the current token, whatever FCM answers (no sleeping, no recursion)."""
        headers = {
            "Content-Type": "application/json",
            "Authorization": "Bearer " + self._tokens.get(),
        }
        return self.requests_session.post(
            self.fcm_end_point, data=payload, headers=headers, timeout=timeout
        )

    def close(self) -> None:
        self.adapter.close()
