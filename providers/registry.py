"""Which client each provider name gets (`build_providers`):
- APNs: the real client when APPLE_PUSH_KEY_FILE, APPLE_PUSH_KEY_ID, APPLE_PUSH_TEAM_ID and
  APNS_TOPIC are all set; otherwise the sink.
- FCM: the real client when FCM_SERVICE_ACCOUNT_FILE is set; otherwise the sink.
- Expo: needs no credentials, so it is real everywhere except in development
  (PULSE_ENV=development) with the default host https://exp.host: `make run` must never
  reach the internet. Setting EXPO_PUSH_HOST (e.g. to a stand-in) makes it real in
  development too.
Building never connects to anything; connections open on the first send. A real client's
module (aioapns, google-auth, ...) is imported only when it is configured, so that
processes that never send (the API) never load them.
"""

from __future__ import annotations

import logging

from core.catalog import Provider
from core.config import Settings
from providers.base import PushProvider, kv
from providers.sink import Recorder, SinkProvider

logger = logging.getLogger(__name__)

DEFAULT_EXPO_HOST = "https://exp.host"


def build_providers(
    settings: Settings, record: Recorder | None = None
) -> dict[Provider, PushProvider]:
    providers: dict[Provider, PushProvider] = {}
    apns_parts = {
        "APPLE_PUSH_KEY_FILE": settings.providers.apns_key_file,
        "APPLE_PUSH_KEY_ID": settings.providers.apns_key_id,
        "APPLE_PUSH_TEAM_ID": settings.providers.apns_team_id,
        "APNS_TOPIC": settings.providers.apns_topic,
    }
    missing = [name for name, value in apns_parts.items() if not value]
    if missing and len(missing) < len(apns_parts):
        # Half a configuration is a mistake, not a choice: say so instead of silently sinking.
        logger.warning("event=apns_partly_configured %s", kv(missing=",".join(missing)))
    if not missing:
        from providers.apns import APNsProvider

        providers[Provider.APNS] = APNsProvider(settings)
    if settings.providers.fcm_service_account_file:
        from providers.fcm import FCMProvider

        providers[Provider.FCM] = FCMProvider(settings)
    expo_is_default = settings.providers.expo_host.rstrip("/") == DEFAULT_EXPO_HOST
    if not (settings.is_development and expo_is_default):
        from providers.expo import ExpoProvider

        providers[Provider.EXPO] = ExpoProvider(settings)
    for name in Provider:
        if name not in providers:
            providers[name] = SinkProvider(name, record)
    logger.info(
        "event=providers_built %s",
        kv(**{p.value: type(providers[p]).__name__ for p in Provider}),
    )
    return providers
