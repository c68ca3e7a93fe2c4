"""Outbound delivery of alerts and events: MQTT and signed webhooks.

Neither ever blocks the analytics: MQTT publishes go to paho's own network thread;
webhooks go to a bounded queue served by a delivery thread that retries with backoff and
gives up after a bounded number of attempts (a full queue drops, and counts, the message).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from citywatch.config import MqttConfig, WebhookConfig

log = logging.getLogger(__name__)


def dumps(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), sort_keys=True).encode()


class MqttPublisher:
    """Publishes to `<prefix>/<type>/<camera>` (e.g. citywatch/alert/gate-1), QoS 1."""

    def __init__(self, config: MqttConfig) -> None:
        self.config = config
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"citywatch-{int(time.time())}",
        )
        if config.username:
            self.client.username_pw_set(config.username, config.password)
        self.client.reconnect_delay_set(1, 30)
        self.published = 0

    def start(self) -> None:
        self.client.connect_async(self.config.host, self.config.port, keepalive=30)
        self.client.loop_start()

    def publish(self, message: dict[str, Any]) -> None:
        topic = f"{self.config.topic_prefix}/{message['type']}/{message.get('camera_id', '-')}"
        self.client.publish(topic, dumps(message), qos=1)
        self.published += 1

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256 over "<timestamp>.<body>" (replay-safe with the time)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass
class WebhookStats:
    delivered: int = 0
    failed: int = 0  # gave up after max_attempts
    dropped: int = 0  # queue full
    attempts: int = 0


class WebhookDispatcher:
    def __init__(
        self, hooks: list[WebhookConfig], max_queue: int = 1000, backoff_s: float = 1.0
    ) -> None:
        self.hooks = hooks
        self.backoff_s = backoff_s
        self.stats = WebhookStats()
        self._queue: queue.Queue[tuple[WebhookConfig, bytes, int, float] | None] = queue.Queue(
            max_queue
        )
        self._retry: list[tuple[float, WebhookConfig, bytes, int]] = []
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._stop = threading.Event()
        self._client = httpx.Client()

    def start(self) -> None:
        self._thread.start()

    def publish(self, message: dict[str, Any]) -> None:
        body = dumps(message)
        for hook in self.hooks:
            if message["type"].split(".")[0] not in hook.topics:
                continue
            try:
                self._queue.put_nowait((hook, body, 1, 0.0))
            except queue.Full:
                self.stats.dropped += 1
                log.warning("webhook queue full; dropped a %s message", message["type"])

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            due = [r for r in self._retry if r[0] <= now]
            self._retry = [r for r in self._retry if r[0] > now]
            for _, hook, body, attempt in due:
                self._deliver(hook, body, attempt)
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is None:
                break
            hook, body, attempt, _ = item
            self._deliver(hook, body, attempt)

    def _deliver(self, hook: WebhookConfig, body: bytes, attempt: int) -> None:
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "X-CityWatch-Timestamp": ts,
            "X-CityWatch-Signature": sign(hook.secret, ts, body),
            "X-CityWatch-Attempt": str(attempt),
        }
        self.stats.attempts += 1
        try:
            r = self._client.post(hook.url, content=body, headers=headers, timeout=hook.timeout_s)
            ok = r.status_code < 300
            why = f"HTTP {r.status_code}"
        except httpx.HTTPError as exc:
            ok, why = False, type(exc).__name__
        if ok:
            self.stats.delivered += 1
            return
        if attempt >= hook.max_attempts:
            self.stats.failed += 1
            log.warning("webhook %s: gave up after %d attempts (%s)", hook.url, attempt, why)
            return
        delay = self.backoff_s * 2 ** (attempt - 1)
        self._retry.append((time.monotonic() + delay, hook, body, attempt + 1))

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        if self._thread.is_alive():
            self._thread.join(10)
        self._client.close()
