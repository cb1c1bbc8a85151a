"""Apple Push Notification service: a provider client over HTTP/2 with token (ES256 JWT) authentication.

httpx (with its `h2` extra) speaks HTTP/2 synchronously, which fits RQ jobs; PyJWT with the
cryptography backend signs the provider token from the `.p8` key. Apple retired the legacy binary
protocol in 2021, so nothing here speaks it. This module knows APNs, not Runner: callers hand it an
`ApnsConfig` and a payload, and map the `Delivery` it returns onto their own records.

The provider token is cached per process (keyed by key id, team and a hash of the key) and signed
anew after TOKEN_REFRESH_SECONDS: Apple refuses tokens older than an hour and also refuses a
provider that signs new ones too often. Neither the key nor a token is ever logged.
"""
import dataclasses
import hashlib
import json
import logging
import ssl
import threading
import time

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

log = logging.getLogger(__name__)

HOSTS = {"sandbox": "https://api.sandbox.push.apple.com", "production": "https://api.push.apple.com"}
MAX_PAYLOAD_BYTES = 4096
# Apple accepts a token for an hour and rejects refreshes more often than every 20 minutes.
TOKEN_REFRESH_SECONDS = 50 * 60

# Outcomes of one push, as a caller acts on them.
SENT = "sent"
DEVICE_GONE = "device_gone"  # the token will never work again: stop pushing to it
RETRY = "retry"  # Apple (or the path to it) is busy or down: try again later
FAILED = "failed"  # refused for a reason retrying will not fix

# Answers that mean the token is dead (410 carries Unregistered; 400 BadDeviceToken is a token
# that was never valid for this environment).
GONE_REASONS = ("BadDeviceToken", "Unregistered")


class ApnsError(Exception):
    """A push that could not be attempted, or an answer that was not APNs speaking."""

    outcome = FAILED


class PayloadTooLarge(ApnsError):
    pass


class InvalidKey(ApnsError):
    pass


class Unreachable(ApnsError):
    """No answer: connection refused, TLS failure, timeout. Worth retrying."""

    outcome = RETRY


@dataclasses.dataclass(frozen=True)
class ApnsConfig:
    key_id: str
    team_id: str
    topic: str
    private_key: str  # PEM text of the .p8 key
    endpoint: str | None = None  # overrides Apple's hosts (push gateways, tests)
    ca_bundle: str | None = None  # extra CA certificates to trust

    def base_url(self, environment):
        if self.endpoint:
            return self.endpoint.rstrip("/")
        return HOSTS[environment]

    def cache_key(self):
        return (self.key_id, self.team_id, hashlib.sha256(self.private_key.encode()).hexdigest())


@dataclasses.dataclass(frozen=True)
class Delivery:
    """What APNs answered to one push."""

    status_code: int
    apns_id: str | None
    reason: str | None
    outcome: str


def classify(status_code, reason):
    """The outcome of an APNs answer (status code and the `reason` of its JSON body)."""
    if status_code == 200:
        return SENT
    if status_code == 410 or reason in GONE_REASONS:
        return DEVICE_GONE
    if status_code == 429 or status_code >= 500:
        return RETRY
    if status_code == 403 and reason == "ExpiredProviderToken":
        return RETRY  # the cached token is dropped; the next attempt signs a fresh one
    return FAILED


def encode_payload(payload):
    """The JSON body of a push, or PayloadTooLarge when it exceeds what APNs accepts."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    if len(body) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(
            f"The push payload is {len(body)} bytes; APNs accepts at most {MAX_PAYLOAD_BYTES}. Shorten the alert."
        )
    return body


# --- provider tokens ---------------------------------------------------------------------------

_tokens = {}  # ApnsConfig.cache_key() -> (token, issued_at)
_tokens_lock = threading.Lock()


def _signing_key(config):
    try:
        key = serialization.load_pem_private_key(config.private_key.encode(), password=None)
    except (ValueError, TypeError):
        raise InvalidKey("apns.privateKey is not a readable PEM private key (the .p8 file's text).") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise InvalidKey("apns.privateKey must be an APNs signing key: EC on the P-256 curve (ES256).")
    return key


def provider_token(config, now):
    """The bearer token for `config` at time `now` (seconds since the epoch): cached until it is
    TOKEN_REFRESH_SECONDS old, then signed anew."""
    cache_key = config.cache_key()
    with _tokens_lock:
        cached = _tokens.get(cache_key)
        if cached and 0 <= now - cached[1] < TOKEN_REFRESH_SECONDS:
            return cached[0]
        issued_at = int(now)
        token = jwt.encode(
            {"iss": config.team_id, "iat": issued_at},
            _signing_key(config),
            algorithm="ES256",
            headers={"kid": config.key_id},
        )
        _tokens[cache_key] = (token, issued_at)
        return token


def forget_token(config):
    """Drop the cached token (APNs answered ExpiredProviderToken)."""
    with _tokens_lock:
        _tokens.pop(config.cache_key(), None)


# --- the client --------------------------------------------------------------------------------


class _NoHeaderValues(logging.Filter):
    """hpack logs every header it encodes or decodes at DEBUG, the provider token among them:
    those records are dropped, so a worker run with DEBUG logging does not write credentials."""

    def filter(self, record):
        return record.levelno > logging.DEBUG


_no_header_values = _NoHeaderValues()
# Filters on a logger do not reach its children: each module logger of hpack gets one.
HPACK_LOGGERS = ("hpack.hpack", "hpack.table")


def _guard_logs():
    for name in HPACK_LOGGERS:
        logger = logging.getLogger(name)
        if _no_header_values not in logger.filters:
            logger.addFilter(_no_header_values)


class ApnsClient:
    """Sends pushes over HTTP/2, one connection per APNs host, reused until `close`.

    `clock` gives the time in seconds since the epoch (tests inject one to age the token).
    """

    def __init__(self, config, *, clock=time.time, timeout=10.0):
        self.config, self.clock, self.timeout = config, clock, timeout
        self._clients = {}
        _guard_logs()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def _client(self, base_url):
        client = self._clients.get(base_url)
        if client is None:
            context = httpx.create_ssl_context()  # httpx's usual trust store, plus the bundle
            if self.config.ca_bundle:
                try:
                    context.load_verify_locations(cafile=self.config.ca_bundle)
                except (OSError, ssl.SSLError) as exc:
                    raise ApnsError(f"apns.caBundle {self.config.ca_bundle!r} is not a readable PEM file: {exc}") from None
            client = httpx.Client(
                http2=True, verify=context, timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0))
            )
            self._clients[base_url] = client
        return client

    def send(self, device_token, environment, payload, *, collapse_id=None, expiration=None, priority=10):
        """Push `payload` (a dict) as an alert to one device; return the Delivery.

        Raises PayloadTooLarge before sending anything, InvalidKey for an unusable key, and
        Unreachable when no answer came.
        """
        body = encode_payload(payload)
        headers = {
            "authorization": f"bearer {provider_token(self.config, self.clock())}",
            "apns-topic": self.config.topic,
            "apns-push-type": "alert",
            "apns-priority": str(priority),
            "content-type": "application/json",
        }
        if expiration is not None:
            # Until then APNs stores the push for a phone that is offline (0: try once, keep nothing).
            headers["apns-expiration"] = str(int(expiration))
        if collapse_id:
            headers["apns-collapse-id"] = collapse_id
        base_url = self.config.base_url(environment)
        try:
            response = self._client(base_url).post(f"{base_url}/3/device/{device_token}", content=body, headers=headers)
        except httpx.TransportError as exc:
            raise Unreachable(f"APNs at {base_url} did not answer: {type(exc).__name__}") from None
        except httpx.InvalidURL:
            raise ApnsError(f"apns.endpoint {base_url!r} is not a usable https URL.") from None
        if response.http_version != "HTTP/2":
            raise ApnsError(f"{base_url} answered over {response.http_version}; APNs speaks HTTP/2 only.")
        reason = None
        if response.status_code != 200:
            try:
                reason = response.json().get("reason")
            except (ValueError, AttributeError):
                reason = None
            reason = reason or f"HTTP {response.status_code}"
        outcome = classify(response.status_code, reason)
        if response.status_code == 403 and reason == "ExpiredProviderToken":
            forget_token(self.config)
        return Delivery(response.status_code, response.headers.get("apns-id"), reason, outcome)
