"""An event hook endpoint for the SDK tests: HTTPS with a self-signed certificate made
with `cryptography`; it echoes Okta's verification challenge and queues every request."""

import datetime
import ipaddress
import json
import queue
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _self_signed():
    """A serving certificate for 127.0.0.1 that is its own trust anchor (not a CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sdk event hook receiver")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return cert_pem, key_pem


class _Handler(BaseHTTPRequestHandler):
    def _answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        challenge = self.headers.get("x-okta-verification-challenge")
        self.server.requests.put(("GET", self.headers, None))
        self._answer(200, json.dumps({"verification": challenge}).encode())

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.put(("POST", self.headers, json.loads(body)))
        self._answer(200)

    def log_message(self, *args):
        pass


class HookReceiver:
    """Serves on https://127.0.0.1:<free port>/okta/events until stopped."""

    def __init__(self, directory):
        self.cert_pem, key_pem = _self_signed()
        cert_path, key_path = directory / "receiver.pem", directory / "receiver-key.pem"
        cert_path.write_text(self.cert_pem)
        key_path.write_text(key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert_path), str(key_path))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._server.requests = queue.Queue()
        self.url = "https://127.0.0.1:%d/okta/events" % self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def next(self, timeout=10):
        """(method, headers, JSON body) of the next request."""
        return self._server.requests.get(timeout=timeout)

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
