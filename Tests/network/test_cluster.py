"""Three Tally nodes, each a host of its own (a network namespace with one address on a
bridge the test builds), on one PostgreSQL and one Redis. Each node is started with only
what a deployment needs: the database, the registry, the shared secret and its own public
URL (the tests that push to the local nginx-rtmp also admit it, and the placement test sets
a CPU budget). Nothing leaves the lab: the namespaces have no route out."""
import signal
import subprocess
import time
from urllib.parse import urlparse

import pytest
import requests
from netlab import Forwarder

from conftest import CHROMIUM_ARGS, wait_for, wait_in_page
from nginx_rtmp import NginxRTMP
from tallytest import DATABASE_URL, operator_token, requires_postgres
from test_program import BLUE, RED
from test_relay import HEARD_AND_SEEN, INBOUND, assert_red_left_blue_right, camera, stage_both_and_go_live
from test_studio import add_destination, create_broadcast, enter_as_guest, signed_up
from test_whip_whep import WHEP_PLAY, WHIP_PUBLISH

GATEWAY = "10.77.20.1"
ADDRESSES = {"a": "10.77.20.11", "b": "10.77.20.12", "c": "10.77.20.13"}
SECRET = "a shared secret for the three-node lab"


class Cluster:
    """The lab: three hosts and the test's own namespace on one bridge, Redis and PostgreSQL
    reachable from the hosts at the gateway address, and nodes started on demand."""

    def __init__(self, lab, tmp_path):
        self.lab, self.tmp_path = lab, tmp_path
        self.hosts = {name: lab.host(name) for name in ADDRESSES}
        lab.switch({self.hosts[name]: f"{address}/24" for name, address in ADDRESSES.items()}, f"{GATEWAY}/24")
        (tmp_path / "redis").mkdir()
        self.redis = subprocess.Popen(["redis-server", "--bind", GATEWAY, "--port", "6390", "--protected-mode", "no", "--save", "", "--appendonly", "no",
                                       "--dir", str(tmp_path / "redis")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        database = urlparse(DATABASE_URL)
        self.postgres = Forwarder((GATEWAY, 0), (database.hostname, database.port))
        self.database_url = DATABASE_URL.replace(f"{database.hostname}:{database.port}", f"{GATEWAY}:{self.postgres.address[1]}")
        self.receiver = NginxRTMP(tmp_path / "receiver")
        self.rtmp = Forwarder((GATEWAY, 0), ("127.0.0.1", self.receiver.rtmp_port))
        self.nodes = {}
        self.runs = 0

    def start(self, name, extra=None):
        """A node on host `name`: its URL once it serves."""
        self.runs += 1
        url = f"http://{ADDRESSES[name]}:8080"
        env = {"TALLY_DATABASE_URL": self.database_url, "TALLY_REDIS_URL": f"redis://{GATEWAY}:6390", "TALLY_SECRET_KEY": SECRET,
               "TALLY_PUBLIC_URL": url, "TALLY_HTTP_PORT": "8080", "TALLY_OUTBOUND_ALLOW": f"{GATEWAY}/32", **(extra or {})}
        process, _ = self.lab.tally(self.hosts[name], self.tmp_path / f"{name}-{self.runs}", env)
        assert wait_for(lambda: self.healthy(url), 30), f"node {name} never answered at {url}"
        self.nodes[name] = process
        return url

    def start_all(self, extra=None):
        urls = {name: self.start(name, extra) for name in ADDRESSES}
        operator = {"Authorization": f"Bearer {self.operator()}"}
        assert wait_for(lambda: len(requests.get(urls["a"] + "/api/nodes", headers=operator, timeout=5).json()["nodes"]) == 3, 15)
        return urls

    def stop_all(self):
        for process in self.nodes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.nodes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.nodes = {}

    def operator(self):
        return operator_token(SECRET, self.tmp_path / "cli")

    def load(self, url):
        operator = {"Authorization": f"Bearer {self.operator()}"}
        return {entry["url"]: entry["load"] for entry in requests.get(url + "/api/nodes", headers=operator, timeout=5).json()["nodes"]}

    def logs(self, name):
        return (self.tmp_path / f"{name}-{self.runs_of(name)}.log").read_text(errors="replace")

    def runs_of(self, name):
        return max(int(path.name.split("-")[1].split(".")[0]) for path in self.tmp_path.glob(f"{name}-*.log"))

    @property
    def rtmp_url(self):
        return f"rtmp://{GATEWAY}:{self.rtmp.address[1]}/live"

    @staticmethod
    def healthy(url):
        try:
            return requests.get(url + "/api/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def close(self):
        self.stop_all()
        self.rtmp.close()
        self.postgres.close()
        self.receiver.stop()
        self.redis.terminate()
        self.redis.wait(10)


@pytest.fixture
def cluster(lab, tmp_path):
    built = Cluster(lab, tmp_path)
    yield built
    built.close()


@requires_postgres
def test_a_studio_spans_three_hosts_and_whep_plays_through_a_third(cluster, tmp_path):
    """Host on A, guest on B: they see and hear each other and both go out in the program
    (pixels at nginx-rtmp); the host's media plays over WHEP through C."""
    from playwright.sync_api import sync_playwright
    urls = cluster.start_all()
    with sync_playwright() as playwright:
        # The lab's nodes serve plain HTTP on their own addresses: the camera needs them treated as secure.
        secure = "--unsafely-treat-insecure-origin-as-secure=" + ",".join(urls.values())
        launch = lambda path: playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                                         args=CHROMIUM_ARGS + [f"--use-file-for-fake-video-capture={path}", secure])
        browsers = [launch(camera(tmp_path, "host", RED)), launch(camera(tmp_path, "guest", BLUE))]
        try:
            host = signed_up(browsers[0], urls["a"], "Hana Host")
            create_broadcast(host, "Three hosts")
            add_destination(host, cluster.rtmp_url, "lab-key")
            host.click("#broadcasts button.invite")
            host.wait_for_selector("#broadcasts button.invite[data-link]")
            link = host.get_attribute("#broadcasts button.invite", "data-link").replace(urls["a"], urls["b"])
            broadcast_id = link.split("/join/")[1].split("?")[0]
            host.click("#broadcasts a:has-text('Open studio')")
            wait_in_page(host, "document.querySelector('#camera').options.length > 0")
            host.click("#enter-studio")
            host.wait_for_selector("#studio:not([hidden])", timeout=20_000)
            guest = enter_as_guest(browsers[1], link, "Gina Guest")
            for page, other in ((host, "Gina Guest"), (guest, "Hana Host")):
                assert wait_for(lambda: (lambda m: m["frames"] > 30 and m["energy"] > 0)(page.evaluate(HEARD_AND_SEEN, other)), 40), \
                    (other, page.evaluate(HEARD_AND_SEEN, other), cluster.logs("a")[-2000:], cluster.logs("b")[-2000:])

            # A participant who publishes over WHIP on A plays over WHEP on B, frames decoded.
            token = host.evaluate("JSON.parse(localStorage.getItem('tally.session')).access_token")
            whip = browsers[0].new_page()
            whip.goto(urls["a"] + "/api/health")
            published = whip.evaluate(WHIP_PUBLISH, {"token": token, "path": f"/whip/{broadcast_id}"})
            assert published["status"] == 201, published
            whip_participant = published["location"].rsplit("/", 1)[1]
            player = browsers[1].new_page()
            player.goto(urls["b"] + "/api/health")
            played = wait_for(lambda: (lambda result: result if result["status"] == 201 else None)(
                player.evaluate(WHEP_PLAY, {"token": token, "path": f"/whep/{broadcast_id}/{whip_participant}"})), 20, 1)
            assert played, cluster.logs("b")[-2000:]
            assert wait_for(lambda: (player.evaluate(INBOUND) or {}).get("video", {}).get("frames", 0) > 30, 30), \
                (player.evaluate(INBOUND), cluster.logs("b")[-2000:])
            whip.close()
            player.close()

            # WHEP through C of the host, who publishes on A.
            host_id = host.evaluate("window.studio.state.me.id")
            viewer = browsers[1].new_page()
            viewer.goto(urls["c"] + "/api/health")
            played = viewer.evaluate(WHEP_PLAY, {"token": token, "path": f"/whep/{broadcast_id}/{host_id}"})
            assert played["status"] == 201, played
            stats = lambda: viewer.evaluate(INBOUND) or {}
            assert wait_for(lambda: stats().get("video", {}).get("frames", 0) > 30, 30), (stats(), cluster.logs("c")[-2000:])
            assert "relay in opened" in cluster.logs("c") and "relay out opened" in cluster.logs("a")

            stage_both_and_go_live(host, ("Hana Host", "Gina Guest"))
            assert_red_left_blue_right(f"{cluster.receiver.url()}/lab-key")
            assert wait_for(lambda: host.inner_text("#status") == "live")
            host.once("dialog", lambda dialog: dialog.accept())
            host.click("#go-live")
            assert wait_for(lambda: host.locator("#destinations li[data-status='stopped']").count() == 1, 20)
        finally:
            for browser in browsers:
                browser.close()


@requires_postgres
def test_placement_follows_load_and_a_full_cluster_refuses(cluster):
    """Every node has a small CPU budget (each admits the one program a node always takes,
    then its measured cost refuses the next). Shows started through A spread by load, and
    the fourth is refused by every node."""
    urls = cluster.start_all({"TALLY_CPU_BUDGET": "0.05"})
    token = requests.post(urls["a"] + "/api/auth/register", timeout=10,
                          json={"email": f"lab-{time.time_ns()}@example.com", "password": "correct horse battery", "name": "Lab Host"}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    shows = [requests.post(urls["a"] + "/api/broadcasts", json={"title": f"Show {n}"}, headers=headers, timeout=10).json()["id"] for n in range(4)]
    live = lambda: {url: load["live_programs"] for url, load in cluster.load(urls["a"]).items()}

    assert requests.post(f"{urls['a']}/api/broadcasts/{shows[0]}/start", headers=headers, timeout=60).status_code == 200
    assert wait_for(lambda: live()[urls["a"]] == 1, 10), live()
    # A's program shows in its CPU share: A is now the busiest node by more than the margin.
    assert wait_for(lambda: (lambda load: load[urls["a"]]["cpu"] > 0.1 + max(load[urls[n]]["cpu"] for n in "bc"))(cluster.load(urls["a"])), 20), \
        cluster.load(urls["a"])
    assert requests.post(f"{urls['a']}/api/broadcasts/{shows[1]}/start", headers=headers, timeout=60).status_code == 200
    assert wait_for(lambda: sum(live().values()) == 2, 10), live()
    assert live()[urls["a"]] == 1, "the second show stayed on the busiest node"
    # Placed by load: no node had to refuse it first.
    assert "node refused the program" not in cluster.logs("a")

    assert requests.post(f"{urls['a']}/api/broadcasts/{shows[2]}/start", headers=headers, timeout=60).status_code == 200
    assert wait_for(lambda: sorted(live().values()) == [1, 1, 1], 10), live()
    refused = requests.post(f"{urls['a']}/api/broadcasts/{shows[3]}/start", headers=headers, timeout=60)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "server_at_capacity", refused.text
    assert "all 3 servers" in refused.json()["error"]["message"], refused.text
    for show in shows[:3]:
        assert requests.post(f"{urls['a']}/api/broadcasts/{show}/end", headers=headers, timeout=30).status_code == 200


@requires_postgres
def test_a_drained_node_hands_its_show_over_and_a_killed_one_loses_it_to_another(cluster):
    """SIGTERM on a show's home: it drains, then the show moves and its destination gets the
    program again; kill -9 of the new home: another node adopts it within 20 s."""
    urls = cluster.start_all({"TALLY_DRAIN_SECONDS": "4"})
    token = requests.post(urls["a"] + "/api/auth/register", timeout=10,
                          json={"email": f"lab-{time.time_ns()}@example.com", "password": "correct horse battery", "name": "Lab Host"}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    show = requests.post(urls["a"] + "/api/broadcasts", json={"title": "Moving show"}, headers=headers, timeout=10).json()["id"]
    reply = requests.post(f"{urls['a']}/api/broadcasts/{show}/destinations", headers=headers, timeout=10,
                          json={"platform": "custom", "name": "Receiver", "rtmp_url": cluster.rtmp_url, "stream_key": "moving-key"})
    assert reply.status_code == 201, reply.text
    assert requests.post(f"{urls['a']}/api/broadcasts/{show}/start", headers=headers, timeout=60).status_code == 200
    assert wait_for(lambda: cluster.receiver.publishes("moving-key") == 1, 20)
    home = wait_for(lambda: (lambda load: next((name for name, url in urls.items() if load[url]["live_programs"] == 1), None))(cluster.load(urls["a"])), 10)
    assert home, cluster.load(urls["a"])

    cluster.nodes[home].send_signal(signal.SIGTERM)
    assert cluster.nodes[home].wait(30) == 0
    assert "handing live programs over" in cluster.logs(home)
    assert wait_for(lambda: cluster.receiver.publishes("moving-key") == 2, 20), "the drained show was not taken over"
    survivors = [name for name in urls if name != home]
    new_home = wait_for(lambda: next((name for name in survivors if cluster.load(urls[survivors[0]])[urls[name]]["live_programs"] == 1), None), 10)
    assert new_home, cluster.load(urls[survivors[0]])

    cluster.nodes[new_home].kill()
    cluster.nodes[new_home].wait()
    killed = time.time()
    last = next(name for name in survivors if name != new_home)
    assert wait_for(lambda: cluster.receiver.publishes("moving-key") == 3, 25), cluster.logs(last)[-3000:]
    assert time.time() - killed <= 20
    assert requests.get(f"{urls[last]}/api/broadcasts/{show}", headers=headers, timeout=10).json()["status"] == "live"
    assert requests.post(f"{urls[last]}/api/broadcasts/{show}/end", headers=headers, timeout=30).status_code == 200
