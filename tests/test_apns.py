"""The APNs provider client against the HTTP/2 TLS stand-in (tests/apns_server.py): provider tokens
verified with the registered key, the headers and payload APNs checks, Apple's answers mapped to
outcomes, the 4 KB limit kept client-side, and the token cached and refreshed by its age."""
import socket
import ssl

import httpx
import pytest

from apns_server import ApnsStandIn, signing_key
from runner import apns

KEY_ID, TEAM_ID, TOPIC = "ABC123DEFG", "DEF123GHIJ", "dev.runner.app"
DEVICE = "a1" * 32
PAYLOAD = {"aps": {"alert": {"title": "demo: Ready for review", "body": "Add a file"}}, "runId": 7}


@pytest.fixture
def key():
    return signing_key()


@pytest.fixture
def server(tmp_path, key):
    with ApnsStandIn(tmp_path, key[1], key_id=KEY_ID, team_id=TEAM_ID, topic=TOPIC) as stand_in:
        yield stand_in


def _config(server, private_key, **overrides):
    values = dict(
        key_id=KEY_ID, team_id=TEAM_ID, topic=TOPIC, private_key=private_key, endpoint=server.url, ca_bundle=server.ca_path
    )
    return apns.ApnsConfig(**{**values, **overrides})


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def test_a_push_goes_over_http2_with_a_verified_es256_token_and_apns_headers(server, key):
    with apns.ApnsClient(_config(server, key[0])) as client:
        delivery = client.send(DEVICE, "sandbox", PAYLOAD, collapse_id="run-7", expiration=1_900_000_000)

    assert delivery.outcome == apns.SENT and delivery.status_code == 200 and delivery.reason is None
    assert server.refusals == []
    [request] = server.to(DEVICE)
    assert delivery.apns_id == request.apns_id
    assert request.alpn == "h2"
    assert request.jwt_header["alg"] == "ES256" and request.jwt_header["kid"] == KEY_ID
    assert request.claims["iss"] == TEAM_ID and isinstance(request.claims["iat"], int)
    assert request.headers["apns-topic"] == TOPIC
    assert request.headers["apns-push-type"] == "alert"
    assert request.headers["apns-collapse-id"] == "run-7"
    assert request.headers["apns-expiration"] == "1900000000"
    assert request.headers["apns-priority"] == "10"
    assert request.payload == PAYLOAD


def test_the_stand_in_refuses_a_token_signed_by_another_key(server, key):
    other_key, _ = signing_key()
    with apns.ApnsClient(_config(server, other_key)) as client:
        delivery = client.send(DEVICE, "sandbox", PAYLOAD)
    assert (delivery.status_code, delivery.reason, delivery.outcome) == (403, "InvalidProviderToken", apns.FAILED)
    assert server.to(DEVICE) == []


def test_the_stand_in_refuses_a_wrong_topic_and_a_client_without_http2(server, key):
    with apns.ApnsClient(_config(server, key[0], topic="com.example.other")) as client:
        assert client.send(DEVICE, "sandbox", PAYLOAD).reason == "TopicDisallowed"
    # APNs speaks only HTTP/2: a client offering HTTP/1.1 alone gets no answer at all.
    context = ssl.create_default_context(cafile=server.ca_path)
    with httpx.Client(http2=False, verify=context) as plain:
        with pytest.raises(httpx.TransportError):
            plain.post(f"{server.url}/3/device/{DEVICE}", json=PAYLOAD)
    # No protocol both sides speak: the TLS handshake settles none, and the stand-in hangs up.
    assert server.refused_connections == [None]


def test_an_oversized_payload_is_refused_before_anything_is_sent(server, key):
    huge = {"aps": {"alert": {"title": "t", "body": "x" * 5000}}}
    with apns.ApnsClient(_config(server, key[0])) as client:
        with pytest.raises(apns.PayloadTooLarge, match=r"is \d+ bytes; APNs accepts at most 4096"):
            client.send(DEVICE, "sandbox", huge)
        # Just under the limit is fine: the limit is APNs', not a smaller one of ours.
        filler = 4096 - len(apns.encode_payload({"aps": {"alert": {"body": ""}}}))
        assert client.send(DEVICE, "sandbox", {"aps": {"alert": {"body": "x" * filler}}}).outcome == apns.SENT
    assert server.connections == 1 and len(server.requests) == 1


def test_the_provider_token_is_cached_and_signed_anew_after_50_minutes(server, key):
    import time

    # The clock starts 55 minutes ago, so every token stays within the stand-in's hour.
    clock = Clock(time.time() - 55 * 60)
    with apns.ApnsClient(_config(server, key[0]), clock=clock) as client:
        client.send(DEVICE, "sandbox", PAYLOAD)
        clock.now += 49 * 60
        client.send(DEVICE, "sandbox", PAYLOAD)
        clock.now += 2 * 60  # 51 minutes after the first token
        client.send(DEVICE, "sandbox", PAYLOAD)
    # A client of its own (a later job in the same worker) reuses the process's token.
    with apns.ApnsClient(_config(server, key[0]), clock=clock) as client:
        client.send(DEVICE, "sandbox", PAYLOAD)

    assert server.refusals == []
    tokens = [r.headers["authorization"] for r in server.to(DEVICE)]
    assert tokens[0] == tokens[1] and tokens[2] != tokens[1] and tokens[3] == tokens[2]
    issued = [r.claims["iat"] for r in server.to(DEVICE)]
    assert issued[2] - issued[0] == 51 * 60


def test_apples_answers_map_to_outcomes(server, key):
    server.script(
        DEVICE, (400, "BadDeviceToken"), (410, "Unregistered"), 429, 500, 503, (400, "BadTopic"), (413, "PayloadTooLarge")
    )
    with apns.ApnsClient(_config(server, key[0])) as client:
        answers = [client.send(DEVICE, "production", PAYLOAD) for _ in range(8)]
    assert [(a.status_code, a.reason, a.outcome) for a in answers] == [
        (400, "BadDeviceToken", apns.DEVICE_GONE),
        (410, "Unregistered", apns.DEVICE_GONE),
        (429, "TooManyRequests", apns.RETRY),
        (500, "InternalServerError", apns.RETRY),
        (503, "ServiceUnavailable", apns.RETRY),
        (400, "BadTopic", apns.FAILED),
        (413, "PayloadTooLarge", apns.FAILED),
        (200, None, apns.SENT),
    ]
    # One HTTP/2 connection carried all of them.
    assert server.connections == 1


def test_an_expired_provider_token_answer_drops_the_cached_token(server, key):
    server.script(DEVICE, (403, "ExpiredProviderToken"))
    with apns.ApnsClient(_config(server, key[0])) as client:
        assert client.send(DEVICE, "sandbox", PAYLOAD).outcome == apns.RETRY
        assert client.send(DEVICE, "sandbox", PAYLOAD).outcome == apns.SENT
    first, second = server.to(DEVICE)
    assert first.headers["authorization"] != second.headers["authorization"]


def test_no_answer_is_worth_a_retry_and_an_untrusted_certificate_is_no_answer(server, key):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        closed_port = free.getsockname()[1]
    with apns.ApnsClient(_config(server, key[0], endpoint=f"https://127.0.0.1:{closed_port}")) as client:
        with pytest.raises(apns.Unreachable) as refused:
            client.send(DEVICE, "sandbox", PAYLOAD)
    assert refused.value.outcome == apns.RETRY
    # Without apns.caBundle the stand-in's certificate is trusted by nobody.
    with apns.ApnsClient(_config(server, key[0], ca_bundle=None)) as client:
        with pytest.raises(apns.Unreachable, match="ConnectError"):
            client.send(DEVICE, "sandbox", PAYLOAD)
    assert server.requests == []


def test_the_host_follows_the_devices_environment_unless_overridden(key):
    config = apns.ApnsConfig(key_id=KEY_ID, team_id=TEAM_ID, topic=TOPIC, private_key=key[0])
    assert config.base_url("sandbox") == "https://api.sandbox.push.apple.com"
    assert config.base_url("production") == "https://api.push.apple.com"
    gateway = apns.ApnsConfig(KEY_ID, TEAM_ID, TOPIC, key[0], endpoint="https://push.example.test/")
    assert gateway.base_url("sandbox") == gateway.base_url("production") == "https://push.example.test"


def test_a_key_that_is_not_an_es256_p8_is_a_clear_error(server, key):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    rsa_pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    for bad, message in (("not a key", "not a readable PEM"), (rsa_pem, "P-256")):
        with apns.ApnsClient(_config(server, bad)) as client:
            with pytest.raises(apns.InvalidKey, match=message) as error:
                client.send(DEVICE, "sandbox", PAYLOAD)
        assert "PRIVATE KEY" not in str(error.value)
    assert server.requests == []


def test_an_unreadable_ca_bundle_is_a_clear_error(server, key, tmp_path):
    with apns.ApnsClient(_config(server, key[0], ca_bundle=str(tmp_path / "missing.pem"))) as client:
        with pytest.raises(apns.ApnsError, match="apns.caBundle .*missing.pem.* is not a readable PEM file") as error:
            client.send(DEVICE, "sandbox", PAYLOAD)
    assert error.value.outcome == apns.FAILED and server.requests == []


def test_neither_the_key_nor_the_token_reaches_the_logs_even_at_debug(server, key, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    server.script(DEVICE, 403)
    with apns.ApnsClient(_config(server, key[0])) as client:
        client.send(DEVICE, "sandbox", PAYLOAD)
        client.send(DEVICE, "sandbox", PAYLOAD)
    token = server.requests[0].headers["authorization"].removeprefix("bearer ")
    assert caplog.records  # the HTTP/2 stack did log, at DEBUG
    body = token.split(".")[1]
    assert body not in caplog.text and token.split(".")[2] not in caplog.text
    assert key[0].splitlines()[1] not in caplog.text
