"""A certificate authority of the test's own, made with the openssl command: a CA, and leaf
certificates it signs for the names a test serves."""
import subprocess
from pathlib import Path


def openssl(*args, stdin=None):
    return subprocess.run(["openssl", *args], check=True, capture_output=True, input=stdin).stdout


class TestCA:
    __test__ = False  # not a pytest class

    def __init__(self, directory: Path, name="Tally Test CA"):
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.key = directory / "ca.key"
        self.cert = directory / "ca.pem"
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(self.key),
                "-out", str(self.cert), "-days", "2", "-subj", f"/CN={name}",
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, name, *alternatives, days=2, stem=None):
        """A leaf certificate for `name` (and any other DNS names or IPs): (cert path, key path)."""
        stem = stem or name
        key, request, cert = (self.directory / f"{stem}.key"), (self.directory / f"{stem}.csr"), (self.directory / f"{stem}.pem")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(request), "-subj", f"/CN={name}")
        sans = ",".join(f"IP:{n}" if n.replace(".", "").isdigit() else f"DNS:{n}" for n in (name, *alternatives))
        extensions = self.directory / f"{stem}.ext"
        extensions.write_text(f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n")
        openssl("x509", "-req", "-in", str(request), "-CA", str(self.cert), "-CAkey", str(self.key), "-CAcreateserial",
                "-out", str(cert), "-days", str(days), "-extfile", str(extensions))
        return cert, key

    def browser_home(self):
        """A home directory whose NSS database (what Chromium on Linux trusts) trusts this CA:
        start Chromium with HOME set to it."""
        home = self.directory / "home"
        database = home / ".pki" / "nssdb"
        database.mkdir(parents=True, exist_ok=True)
        subprocess.run(["certutil", "-N", "-d", f"sql:{database}", "--empty-password"], check=True, capture_output=True)
        subprocess.run(["certutil", "-A", "-d", f"sql:{database}", "-n", "tally-test-ca", "-t", "C,,", "-i", str(self.cert)],
                       check=True, capture_output=True)
        return home
