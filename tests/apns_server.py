"""A stand-in for Apple's push service on loopback: HTTP/2 over TLS (ALPN `h2` only, like APNs),
with a certificate from a CA made for the test (trust it through `apns.caBundle`).

It checks what APNs checks — method POST, path `/3/device/<hex token>`, a `bearer` provider token
that is an ES256 JWT signed by the registered key (`kid` naming it, `iss` the team, `iat` within
the hour), `apns-topic`, `apns-push-type: alert`, a JSON payload of at most 4096 bytes, and the
optional headers' formats — answering a refusal with APNs' reason when a check fails. Requests that
pass get the scripted answers of their device token, in order (200 with an `apns-id` once the
script is used up). Every request is recorded.
"""
import dataclasses
import datetime as dt
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
import uuid

import h2.config
import h2.connection
import h2.events
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PATH = re.compile(r"/3/device/(?P<token>[^/]+)")
TOKEN = re.compile(r"(?:[0-9a-f]{2}){32,100}")
REASONS = {
    400: "BadDeviceToken",
    403: "InvalidProviderToken",
    410: "Unregistered",
    413: "PayloadTooLarge",
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}


def signing_key():
    """A fresh APNs-style signing key: `(PEM text of the .p8, public key)`."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return pem.decode(), key.public_key()


def _certificates(directory):
    """A CA and a server certificate for 127.0.0.1/localhost signed by it; returns
    `(ca_path, cert_path, key_path)`."""
    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Runner test APNs CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "apns-ca.pem", directory / "apns-server.pem", directory / "apns-server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return tuple(str(path) for path in paths)


@dataclasses.dataclass
class Request:
    method: str
    path: str
    headers: dict
    body: bytes
    alpn: str
    token: str | None = None  # the device token of the path
    claims: dict | None = None  # of the verified provider token
    jwt_header: dict | None = None
    status: int = 0
    reason: str | None = None  # of a refusal or a scripted error
    apns_id: str | None = None

    @property
    def payload(self):
        return json.loads(self.body)


class ApnsStandIn:
    """`ApnsStandIn(tmp_path, public_key, key_id=…, team_id=…, topic=…)`; `url` and `ca_path` are
    what `apns.endpoint` and `apns.caBundle` should say. Use as a context manager or `close()`."""

    def __init__(self, directory, public_key, *, key_id, team_id, topic):
        self.public_key, self.key_id, self.team_id, self.topic = public_key, key_id, team_id, topic
        self.ca_path, cert_path, key_path = _certificates(directory)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.load_cert_chain(cert_path, key_path)
        self.context.set_alpn_protocols(["h2"])
        self.requests = []
        self.connections = 0
        self.refused_connections = []  # ALPN protocol offered instead of h2 (None: none)
        self._scripts = {}
        self._lock = threading.Lock()
        self._closing = False
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self._thread = threading.Thread(target=self._accept, daemon=True, name="apns-stand-in")
        self._thread.start()

    @property
    def url(self):
        return f"https://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._closing = True
        self._thread.join(timeout=5)
        self._listener.close()

    def script(self, device_token, *answers):
        """Answer the next pushes to `device_token` with `answers` in order: a status code (with
        APNs' usual reason) or `(status, reason)`. After them: 200."""
        with self._lock:
            self._scripts.setdefault(device_token.lower(), []).extend(
                answer if isinstance(answer, tuple) else (answer, REASONS.get(answer)) for answer in answers
            )

    def to(self, device_token):
        """The recorded requests that passed the checks for `device_token`."""
        return [r for r in self.requests if r.token == device_token.lower() and r.claims is not None]

    @property
    def refusals(self):
        """Requests the checks refused: `(status, reason)`, should a test expect none."""
        return [(r.status, r.reason) for r in self.requests if r.claims is None]

    # --- serving -------------------------------------------------------------------------------

    def _accept(self):
        while not self._closing:
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(sock,), daemon=True, name="apns-stand-in-conn").start()

    def _serve(self, raw):
        try:
            sock = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        with sock:
            alpn = sock.selected_alpn_protocol()
            with self._lock:
                self.connections += 1
                if alpn != "h2":
                    self.refused_connections.append(alpn)
            if alpn != "h2":
                return  # APNs speaks nothing but HTTP/2
            sock.settimeout(0.5)
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
            conn.initiate_connection()
            sock.sendall(conn.data_to_send())
            streams = {}
            while not self._closing:
                try:
                    data = sock.recv(65535)
                except TimeoutError:
                    continue
                except (ssl.SSLError, OSError):
                    return
                if not data:
                    return
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.RequestReceived):
                        streams[event.stream_id] = (dict(event.headers), bytearray())
                    elif isinstance(event, h2.events.DataReceived):
                        streams[event.stream_id][1].extend(event.data)
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamEnded):
                        headers, body = streams.pop(event.stream_id)
                        self._answer(conn, event.stream_id, headers, bytes(body), alpn)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        sock.sendall(conn.data_to_send())
                        return
                sock.sendall(conn.data_to_send())

    def _answer(self, conn, stream_id, headers, body, alpn):
        request = Request(
            method=headers.get(":method"), path=headers.get(":path"), headers=headers, body=body, alpn=alpn
        )
        refusal = self._check(request)
        with self._lock:
            if refusal:
                request.claims = None
                request.status, request.reason = refusal
            else:
                script = self._scripts.get(request.token) or []
                request.status, request.reason = script.pop(0) if script else (200, None)
            if request.status == 200:
                request.apns_id = str(uuid.uuid4()).upper()
            self.requests.append(request)
        response_headers = [(":status", str(request.status))]
        if request.apns_id:
            response_headers.append(("apns-id", request.apns_id))
        if request.status == 200:
            conn.send_headers(stream_id, response_headers, end_stream=True)
            return
        answer = {"reason": request.reason}
        if request.status == 410:
            answer["timestamp"] = int(time.time() * 1000)
        data = json.dumps(answer).encode()
        conn.send_headers(stream_id, response_headers + [("content-type", "application/json")])
        conn.send_data(stream_id, data, end_stream=True)

    def _check(self, request):
        """APNs' checks, in its order; `(status, reason)` of the first that fails, else None."""
        headers = request.headers
        if request.method != "POST":
            return 405, "MethodNotAllowed"
        match = PATH.fullmatch(request.path or "")
        if not match:
            return 404, "BadPath"
        request.token = match["token"]
        if not TOKEN.fullmatch(request.token):
            return 400, "BadDeviceToken"
        authorization = headers.get("authorization", "")
        if not authorization.startswith("bearer "):
            return 403, "MissingProviderToken"
        token = authorization.removeprefix("bearer ")
        try:
            request.jwt_header = jwt.get_unverified_header(token)
            request.claims = jwt.decode(
                token, self.public_key, algorithms=["ES256"], options={"require": ["iss", "iat"], "verify_iat": False}
            )
        except jwt.PyJWTError:
            return 403, "InvalidProviderToken"
        if request.jwt_header.get("alg") != "ES256" or request.jwt_header.get("kid") != self.key_id:
            return 403, "InvalidProviderToken"
        if request.claims["iss"] != self.team_id:
            return 403, "InvalidProviderToken"
        age = time.time() - request.claims["iat"]
        if age > 3600:
            return 403, "ExpiredProviderToken"
        if age < -60:
            return 403, "InvalidProviderToken"
        if "apns-topic" not in headers:
            return 400, "MissingTopic"
        if headers["apns-topic"] != self.topic:
            return 400, "TopicDisallowed"
        if headers.get("apns-push-type") != "alert":
            return 400, "InvalidPushType"
        if headers.get("apns-priority", "10") not in ("5", "10", "1"):
            return 400, "BadPriority"
        if not headers.get("apns-expiration", "0").isdigit():
            return 400, "BadExpirationDate"
        if len(headers.get("apns-collapse-id", "").encode()) > 64:
            return 400, "BadCollapseId"
        if not request.body:
            return 400, "PayloadEmpty"
        if len(request.body) > 4096:
            return 413, "PayloadTooLarge"
        try:
            payload = json.loads(request.body)
        except ValueError:
            return 400, "BadPayload"
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            return 400, "BadPayload"
        return None
