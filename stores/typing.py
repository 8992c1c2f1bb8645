"""Typing state in Redis: what each connection is typing in, when it stops by itself, and
the cached participants of conversations.

Records only (the throttle and timeout rules are in core.typing_indicator); any gateway
can stop any connection's typing when its deadline passes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import redis

from core import keys
from stores.connections import CLAIM_DUE

CONVERSATION_CACHE_SECONDS = 30


@dataclass(frozen=True)
class Conversation:
    user_a_id: str
    user_b_id: str
    status: str
    expires_at: datetime | None


def _parties(value: bytes) -> tuple[str, str]:
    recipient, _, sender = value.decode().partition("\t")
    return recipient, sender


class TypingStore:
    def __init__(self, client: redis.Redis, prefix: str):
        self.redis = client
        self.prefix = prefix
        self._claim = client.register_script(CLAIM_DUE)

    def start(
        self, sid: str, conversation_id: str, recipient_id: str, sender_id: str, stops_at: float
    ) -> bool:
        """Mark typing (again); True when it had not started yet."""
        p = self.prefix
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(keys.rt_typing(p, sid), conversation_id, f"{recipient_id}\t{sender_id}")
        pipe.expire(keys.rt_typing(p, sid), 86400)
        pipe.zadd(keys.rt_typing_deadlines(p), {f"{sid}|{conversation_id}": stops_at})
        return bool(pipe.execute()[0])

    def stop(self, sid: str, conversation_id: str) -> str | None:
        """Forget one typing; returns its recipient when it was going on."""
        p = self.prefix
        pipe = self.redis.pipeline(transaction=True)
        pipe.hget(keys.rt_typing(p, sid), conversation_id)
        pipe.hdel(keys.rt_typing(p, sid), conversation_id)
        pipe.zrem(keys.rt_typing_deadlines(p), f"{sid}|{conversation_id}")
        value = pipe.execute()[0]
        return _parties(value)[0] if value else None

    def stop_all(self, sid: str) -> dict[str, tuple[str, str]]:
        """Forget everything one connection was typing in: conversation -> (recipient,
        sender)."""
        p = self.prefix
        pipe = self.redis.pipeline(transaction=True)
        pipe.hgetall(keys.rt_typing(p, sid))
        pipe.delete(keys.rt_typing(p, sid))
        ongoing = {k.decode(): _parties(v) for k, v in pipe.execute()[0].items()}
        if ongoing:
            self.redis.zrem(keys.rt_typing_deadlines(p), *(f"{sid}|{c}" for c in ongoing))
        return ongoing

    def claim_expired(self, now: float, limit: int = 500) -> list[tuple[str, str, str, str]]:
        """Typings past their deadline, each handed out once: (sid, conversation, recipient,
        sender)."""
        raw = self._claim(keys=[keys.rt_typing_deadlines(self.prefix)], args=[now, limit])
        expired = []
        for item in raw:
            sid, _, conversation_id = item.decode().partition("|")
            key = keys.rt_typing(self.prefix, sid)
            pipe = self.redis.pipeline(transaction=True)
            pipe.hget(key, conversation_id)
            pipe.hdel(key, conversation_id)
            value = pipe.execute()[0]
            if value:
                expired.append((sid, conversation_id, *_parties(value)))
        return expired

    # --- conversations (a cache of the matches table) --------------------------------

    def cached_conversation(self, conversation_id: str) -> Conversation | None:
        raw = self.redis.get(keys.rt_conversation(self.prefix, conversation_id))
        if raw is None:
            return None
        value = json.loads(raw)
        expires = datetime.fromisoformat(value["expires_at"]) if value["expires_at"] else None
        return Conversation(value["a"], value["b"], value["status"], expires)

    def cache_conversation(self, conversation_id: str, conversation: Conversation) -> None:
        value = {
            "a": conversation.user_a_id,
            "b": conversation.user_b_id,
            "status": conversation.status,
            "expires_at": conversation.expires_at.isoformat() if conversation.expires_at else None,
        }
        self.redis.set(
            keys.rt_conversation(self.prefix, conversation_id),
            json.dumps(value),
            ex=CONVERSATION_CACHE_SECONDS,
        )

    def forget_conversation(self, conversation_id: str) -> None:
        self.redis.delete(keys.rt_conversation(self.prefix, conversation_id))
