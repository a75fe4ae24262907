"""A real nginx-rtmp on loopback: the stand-in for YouTube and Twitch in the program tests."""
import socket
import subprocess
import time
from pathlib import Path

from tallytest import free_port

CONFIG = """
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
daemon off;
master_process off;
error_log {dir}/error.log info;
pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{http_port};
        location /allow {{ return 200; }}
        location /deny {{ return 403; }}
    }}
}}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp_port};
        application live {{
            live on;
            record all;
            record_path {dir}/rec;
            record_unique on;
            on_publish http://127.0.0.1:{http_port}/{verdict};
        }}
    }}
}}
"""


class NginxRTMP:
    """`accept=False` answers every publish with 403, as a platform does for a bad key."""

    def __init__(self, directory: Path, accept=True, rtmp_port=None):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "rec").mkdir(exist_ok=True)
        self.rtmp_port = rtmp_port or free_port()
        self.http_port = free_port()
        (self.dir / "nginx.conf").write_text(CONFIG.format(dir=self.dir, rtmp_port=self.rtmp_port, http_port=self.http_port,
                                                           verdict="allow" if accept else "deny"))
        self.process = None
        self.start()

    def start(self):
        self.process = subprocess.Popen(["nginx", "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.rtmp_port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("nginx-rtmp did not start")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def url(self):
        return f"rtmp://127.0.0.1:{self.rtmp_port}/live"

    def publishes(self, key):
        """How many times a publish of `key` started, from nginx's log."""
        log = self.dir / "error.log"
        return log.read_text(errors="replace").count(f"publish: name='{key}'") if log.exists() else 0

    def recordings(self):
        return sorted((self.dir / "rec").glob("*.flv"))
