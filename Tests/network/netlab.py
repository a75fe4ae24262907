"""Hosts made of network namespaces, for tests that need more than one address: each test
builds what it needs with `Lab`, on addresses it chooses (10.77.0.0/16), and everything is
removed afterwards. Nothing leaves this machine: the namespaces have no route out."""
import json
import os
import signal
import socket
import subprocess
import threading
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
        if left_address:
            ip("addr", "add", left_address, "dev", a, namespace=left)
        if right_address:
            ip("addr", "add", right_address, "dev", b, namespace=right)
        ip("link", "set", a, "up", namespace=left)
        ip("link", "set", b, "up", namespace=right)
        return a, b

    def switch(self, hosts, own_address):
        """A bridge, in a namespace of its own, with each of `hosts` ({namespace: address CIDR})
        and this test's own namespace (at `own_address`) plugged into it: one LAN."""
        switch = self.host("sw")
        ip("link", "add", "br0", "type", "bridge", namespace=switch)
        ip("link", "set", "br0", "up", namespace=switch)
        for namespace, address in hosts.items():
            _, port = self.wire(namespace, address, switch, None)
            ip("link", "set", port, "master", "br0", namespace=switch)
        _, port = self.wire(None, own_address, switch, None)
        ip("link", "set", port, "master", "br0", namespace=switch)
        return switch

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


class Forwarder:
    """TCP from `listen` (host, port) in this test's namespace to `target`: how hosts in the
    lab reach a service the test scripts started on loopback (PostgreSQL, nginx-rtmp)."""

    def __init__(self, listen, target):
        self.target = target
        self.server = socket.create_server(listen, reuse_port=False)
        self.address = self.server.getsockname()
        self.sockets = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.server.accept()
                upstream = socket.create_connection(self.target, timeout=10)
                upstream.settimeout(None)
            except OSError:
                return
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.server.close()
        for end in self.sockets:
            end.close()
