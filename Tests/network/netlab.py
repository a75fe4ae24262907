"""Hosts made of network namespaces, for tests that need more than one address: each test
builds what it needs with `Lab`, on addresses it chooses (10.77.0.0/16), and everything is
removed afterwards. Nothing leaves this machine: the namespaces have no route out."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

BINARY = os.environ.get("TALLY_BINARY", str(Path(__file__).resolve().parents[2] / ".build/debug/tally"))


def ip(*args, namespace=None):
    command = ["ip", *(["-n", namespace] if namespace else []), *args]
    subprocess.run(command, check=True, capture_output=True, text=True)


class Lab:
    """Namespaces and the veth pairs between them; names carry this process's id so runs side
    by side do not meet."""

    made = 0

    def __init__(self):
        Lab.made += 1
        self.tag = f"t{os.getpid() % 10000}{Lab.made % 100}"
        self.namespaces = []
        self.wires = 0
        self.processes = []
        self.own_links = []

    def host(self, name):
        namespace = f"{self.tag}-{name}"
        subprocess.run(["ip", "netns", "add", namespace], check=True, capture_output=True)
        self.namespaces.append(namespace)
        ip("link", "set", "lo", "up", namespace=namespace)
        return namespace

    def wire(self, left, left_address, right, right_address):
        """A veth pair from `left` to `right`, with an address (CIDR) at each end; `left` None
        is this test's own namespace (the pair goes when `right` is deleted)."""
        a, b = f"{self.tag}a{self.wires}", f"{self.tag}b{self.wires}"
        self.wires += 1
        ip("link", "add", a, "type", "veth", "peer", "name", b)
        if left:
            ip("link", "set", a, "netns", left)
        else:
            self.own_links.append(a)
        ip("link", "set", b, "netns", right)
        ip("addr", "add", left_address, "dev", a, namespace=left)
        ip("addr", "add", right_address, "dev", b, namespace=right)
        ip("link", "set", a, "up", namespace=left)
        ip("link", "set", b, "up", namespace=right)
        return a, b

    def tally(self, namespace, data_dir, env):
        """`tally` inside `namespace`, every port picked free; returns (process, ports) once it
        has written ports.json."""
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
        full_env.update({"TALLY_DATA_DIR": str(data_dir), "TALLY_HTTP_PORT": "0", "TALLY_UDP_PORT": "0", "TALLY_TCP_PORT": "0",
                         "TALLY_RTMP_PORT": "0", "TALLY_SRT_PORT": "0", "TALLY_TURN_PORT": "0", "TALLY_BCRYPT_COST": "4", **env})
        log = open(data_dir.parent / f"{data_dir.name}.log", "wb")
        process = self.run(namespace, [BINARY], env=full_env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        ports = data_dir / "ports.json"
        deadline = time.time() + 60
        while time.time() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"tally exited with {process.returncode}: {(data_dir.parent / f'{data_dir.name}.log').read_text()}")
            if ports.exists():
                try:
                    return process, json.loads(ports.read_text())
                except ValueError:
                    pass
            time.sleep(0.1)
        raise AssertionError("tally did not start within 60 s")

    def firewall(self, namespace, rules):
        """nftables rules for what `namespace` may send (an output chain whose policy is drop)."""
        ruleset = "table inet labfw {\n chain out {\n  type filter hook output priority 0; policy drop;\n  oif lo accept\n  ct state established,related accept\n"
        ruleset += "".join(f"  {rule}\n" for rule in rules) + " }\n}\n"
        subprocess.run(["ip", "netns", "exec", namespace, "nft", "-f", "-"], input=ruleset, text=True, check=True, capture_output=True)

    def run(self, namespace, args, **popen):
        return subprocess.Popen(["ip", "netns", "exec", namespace, *args], **popen)

    def check(self, namespace, args, timeout=60):
        return subprocess.run(["ip", "netns", "exec", namespace, *args], capture_output=True, text=True, timeout=timeout)

    def close(self):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
        for link in self.own_links:
            subprocess.run(["ip", "link", "delete", link], capture_output=True)
        for namespace in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "delete", namespace], capture_output=True)
        self.namespaces = []
        self.own_links = []
