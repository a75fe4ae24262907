"""HTTPS from Tally itself: a certificate from files, replaced while it runs; and one it
obtains over ACME from pebble (Let's Encrypt's test CA) and renews before it expires."""
import json
import socket
import ssl
import subprocess
import time

import requests

from tallytest import free_port
from testca import TestCA

NAME = "studio.tally.test"


def served_certificate(port, trusted=None):
    """The DER certificate Tally serves for NAME on `port`; verified against `trusted` (PEM text) when given."""
    context = ssl.create_default_context(cadata=trusted) if trusted else ssl._create_unverified_context()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=NAME) as tls:
            return tls.getpeercert(binary_form=True)


def https_port(tally):
    return int(tally.url.rsplit(":", 1)[1])


def test_certificate_files_are_served_and_replaced_without_a_restart(start_tally, tmp_path):
    ca = TestCA(tmp_path / "ca")
    first_cert, first_key = ca.issue(NAME, stem="first")
    served_cert, served_key = tmp_path / "served.pem", tmp_path / "served.key"
    served_cert.write_bytes(first_cert.read_bytes())
    served_key.write_bytes(first_key.read_bytes())
    tally = start_tally({"TALLY_HTTPS_PORT": "0", "TALLY_TLS_CERT": str(served_cert), "TALLY_TLS_KEY": str(served_key)})
    port = https_port(tally)
    trusted = ca.cert.read_text()
    before = served_certificate(port, trusted)
    assert before == ssl.PEM_cert_to_DER_cert(first_cert.read_text())

    # A half-written pair (new key, old certificate) is refused and the old one kept.
    second_cert, second_key = ca.issue(NAME, stem="second")
    served_key.write_bytes(second_key.read_bytes())
    time.sleep(6)
    assert served_certificate(port, trusted) == before
    served_cert.write_bytes(second_cert.read_bytes())
    deadline = time.time() + 15
    while time.time() < deadline and served_certificate(port, trusted) == before:
        time.sleep(0.5)
    assert served_certificate(port, trusted) == ssl.PEM_cert_to_DER_cert(second_cert.read_text())
    assert tally.process.poll() is None
    assert "keeping the previous certificate" in tally.logs()


def test_tls_settings_are_checked_at_start(start_tally, tmp_path):
    ca = TestCA(tmp_path / "ca")
    cert, key = ca.issue(NAME)
    other_cert, _ = ca.issue("other.tally.test")
    for env, words in [({"TALLY_TLS_CERT": str(cert)}, "TALLY_TLS_CERT and TALLY_TLS_KEY go together"),
                       ({"TALLY_TLS_CERT": str(other_cert), "TALLY_TLS_KEY": str(key)}, "do not load"),
                       ({"TALLY_ACME_DOMAINS": "127.0.0.1"}, "is not a DNS name"),
                       ({"TALLY_ACME_DOMAINS": NAME, "TALLY_TLS_CERT": str(cert), "TALLY_TLS_KEY": str(key)}, "not both")]:
        tally = start_tally(env, wait=False)
        assert tally.process.wait(30) != 0
        assert words in tally.logs(), tally.logs()


class Pebble:
    """pebble with pebble-challtestsrv as its DNS (every name is 127.0.0.1): it validates
    HTTP-01 against Tally's HTTP port and issues certificates that live `validity` seconds."""

    def __init__(self, directory, http_port, validity):
        self.ca = TestCA(directory / "pebble-ca", name="Pebble API test CA")
        cert, key = self.ca.issue("localhost", "127.0.0.1", stem="pebble-api")
        self.port, self.management, dns = free_port(), free_port(), free_port()
        config = directory / "pebble.json"
        config.write_text(json.dumps({"pebble": {
            "listenAddress": f"127.0.0.1:{self.port}", "managementListenAddress": f"127.0.0.1:{self.management}",
            "certificate": str(cert), "privateKey": str(key), "httpPort": http_port, "tlsPort": free_port(),
            "ocspResponderURL": "", "externalAccountBindingRequired": False, "certificateValidityPeriod": validity}}))
        logs = open(directory / "pebble.log", "wb")
        self.processes = [
            subprocess.Popen(["pebble-challtestsrv", "-dns01", f"127.0.0.1:{dns}", "-http01", "", "-https01", "", "-tlsalpn01", "",
                              "-management", f"127.0.0.1:{free_port()}", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
                             stdout=logs, stderr=subprocess.STDOUT),
            subprocess.Popen(["pebble", "-config", str(config), "-dnsserver", f"127.0.0.1:{dns}"], stdout=logs, stderr=subprocess.STDOUT,
                             env={"PEBBLE_VA_NOSLEEP": "1", "PATH": "/usr/bin:/bin"}),
        ]
        self.log = directory / "pebble.log"
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                requests.get(self.directory_url, verify=str(self.ca.cert), timeout=2)
                return
            except requests.ConnectionError:
                time.sleep(0.2)
        raise AssertionError(f"pebble did not start: {self.log.read_text()}")

    @property
    def directory_url(self):
        return f"https://localhost:{self.port}/dir"

    def root(self):
        """The root that signs what pebble issues (made afresh each run)."""
        return requests.get(f"https://localhost:{self.management}/roots/0", verify=str(self.ca.cert), timeout=5).text

    def stop(self):
        for process in self.processes:
            process.terminate()
            process.wait(10)


def test_a_certificate_from_pebble_is_obtained_served_and_renewed_while_running(start_tally, tmp_path):
    http_port = free_port()
    pebble = Pebble(tmp_path, http_port, validity=30)
    try:
        tally = start_tally({"TALLY_HTTP_PORT": str(http_port), "TALLY_HTTPS_PORT": "0", "TALLY_ACME_DOMAINS": NAME,
                             "TALLY_ACME_EMAIL": "ops@tally.test", "TALLY_ACME_DIRECTORY": pebble.directory_url,
                             "TALLY_ACME_DIRECTORY_CA": str(pebble.ca.cert)})
        port = https_port(tally)
        root = pebble.root()
        first = None
        deadline = time.time() + 30
        while time.time() < deadline and first is None:
            try:
                first = served_certificate(port, root)
            except (ssl.SSLError, ConnectionError, OSError):
                time.sleep(0.5)
        assert first, f"no certificate from pebble: {tally.logs()[-3000:]}\n{pebble.log.read_text()[-3000:]}"
        assert (tally.data_dir / "acme" / "certificate.pem").exists()
        assert (tally.data_dir / "acme" / "account.key.pem").stat().st_mode & 0o777 == 0o600

        # A third of its 30 s left, it is replaced; the process is the same one.
        deadline = time.time() + 40
        renewed = first
        while time.time() < deadline and renewed == first:
            time.sleep(1)
            renewed = served_certificate(port, root)
        assert renewed != first, tally.logs()[-3000:]
        assert tally.process.poll() is None
        assert tally.logs().count("acme: certificate obtained") >= 2
        # Plain HTTP redirects, and its challenge path answers nothing once the CA is done.
        assert requests.get(tally.http_url + "/", allow_redirects=False, timeout=5).status_code == 301
        assert requests.get(tally.http_url + "/.well-known/acme-challenge/nothing", timeout=5).status_code == 404
    finally:
        pebble.stop()
