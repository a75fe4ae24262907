"""The browser studio end to end: a host signs up, creates a broadcast and copies the invite
link; two guests join through it with fake devices; the host puts both on stage; everyone sees
everyone's video; chat reaches all; a layout switch redraws every page's stage; a guest whose
socket is cut comes back on stage without a new join; a guest cannot change the stage.
Screenshots of the dashboard, green room and studio at 1280×720 and 390×844 are saved to
test-artifacts/screenshots/ (or $TALLY_ARTIFACTS_DIR)."""
import os
import time
from pathlib import Path

from conftest import CHROMIUM_ARGS, wait_in_page, wait_for
from nginx_rtmp import NginxRTMP
from test_program import close_to, grab_frame

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("TALLY_ARTIFACTS_DIR", ROOT / "test-artifacts")) / "screenshots"
SIZES = {"desktop": {"width": 1280, "height": 720}, "phone": {"width": 390, "height": 844}}




def shoot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        page.wait_for_timeout(800)
        page.screenshot(path=str(ARTIFACTS / f"{name}-{size}.png"))
    page.set_viewport_size(SIZES["desktop"])


# Videos of the other participants playing on this page (backstage cards and stage tiles).
PLAYING = """() => [...document.querySelectorAll('[data-participant] video')]
    .filter(v => v.closest('[data-participant]').dataset.participant !== window.studio.state.me.id && v.videoWidth > 0)
    .map(v => v.closest('[data-participant]').dataset.participant)"""

SUBSCRIPTIONS = """() => [...window.studio.state.participants.values()].map(e => ({name: e.info.name,
    state: e.subscription?.pc.connectionState ?? 'none', tracks: e.subscription?.stream.getTracks().length ?? 0,
    stats: null})).concat([{toast: document.querySelector('#toast').textContent}])"""

COMMENT = "() => document.querySelector('#stage .comment')?.textContent ?? ''"
# The accent the host picks in the studio's theme, which the compositor draws the comment's name strip in.
ACCENT = (200, 0, 200)
THEME = """async () => ({accent: getComputedStyle(document.querySelector('#stage')).getPropertyValue('--theme-accent').trim(),
    nameFont: getComputedStyle(document.querySelector('#stage .tile .name') ?? document.body).fontFamily,
    serifLoaded: (await document.fonts.load('700 16px "Tally Serif"')).length})"""

STAGE = """() => ({layout: document.querySelector('#stage').dataset.layout,
    tiles: [...document.querySelectorAll('#stage .tile')].map(t => ({id: t.dataset.participant, left: t.style.left, width: t.style.width}))})"""


def signed_up(browser, url, name):
    """A new page of a new account, signed up through the sign-in page and now on its dashboard."""
    page = browser.new_context(viewport=SIZES["desktop"]).new_page()
    page.goto(url + "/")
    page.click("#tab-register")
    page.fill("#register-name", name)
    page.fill("#register-email", f"{name.split()[0].lower()}-{time.time_ns()}@example.com")
    page.fill("#register-password", "correct horse battery")
    page.click("#register button[type=submit]")
    page.wait_for_url("**/dashboard.html")
    return page


def create_broadcast(page, title):
    """A new broadcast from the dashboard's form, its destinations opened."""
    page.fill("#title", title)
    page.click("#create button[type=submit]")
    page.wait_for_selector("#broadcasts li")
    page.click("#broadcasts details summary")


def add_destination(page, url, key):
    """A custom RTMP destination added through the dashboard's form."""
    page.select_option("#broadcasts select[id$='-platform']", "custom")
    page.fill("#broadcasts input[id$='-url']", url)
    page.fill("#broadcasts input[id$='-key']", key)
    count = page.locator("#broadcasts details li").count()
    page.click("#broadcasts details button[type=submit]")
    wait_for(lambda: page.locator("#broadcasts details li").count() == count + 1, 10)


def enter_as_guest(browser, link, name):
    context = browser.new_context(viewport=SIZES["desktop"])
    page = context.new_page()
    page.goto(link)
    page.fill("#guest-name", name)
    page.click("#enter-studio")
    page.wait_for_selector("#studio:not([hidden])", timeout=20_000)
    return page


def test_host_and_guests_run_a_studio(start_tally, tmp_path):
    from playwright.sync_api import sync_playwright
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_WEB_DIR": str(ROOT / "web"), "TALLY_LAYOUTS_DIR": str(ROOT / "layouts")})
    receiver = NginxRTMP(tmp_path / "receiver")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            host = signed_up(browser, tally.url, "Hana Host")
            create_broadcast(host, "Friday show")
            # A destination: its stream key is never shown back, only its last characters.
            add_destination(host, receiver.url(), "secret-stream-key-9Z7Q")
            listed = host.inner_text("#broadcasts details ul")
            assert "9Z7Q" in listed and "secret-stream-key" not in listed, listed
            shoot(host, "dashboard")
            host.click("#broadcasts button.invite")
            host.wait_for_selector("#broadcasts button.invite[data-link]")
            link = host.get_attribute("#broadcasts button.invite", "data-link")
            assert "/join/" in link and "invite=" in link

            host.click("#broadcasts a:has-text('Open studio')")
            wait_in_page(host, "document.querySelector('#camera').options.length > 0")
            shoot(host, "greenroom")
            host.click("#enter-studio")
            host.wait_for_selector("#studio:not([hidden])", timeout=20_000)
            assert host.is_checked("#record")
            host.uncheck("#record")
            assert wait_for(lambda: "Recording is off" in host.inner_text("#toast"), 10)

            guests = [enter_as_guest(browser, link, name) for name in ("Gina Guest", "Omar Guest")]
            pages = [host, *guests]
            ids = [page.evaluate("window.studio.state.me.id") for page in pages]
            assert len(set(ids)) == 3

            # The host puts both guests on stage.
            assert wait_for(lambda: host.locator("#backstage [data-participant]").count() == 3), "the guests never showed up backstage"
            for name in ("Gina Guest", "Omar Guest"):
                host.click(f"button[aria-label='Add {name} to stage']")
                host.wait_for_selector(f"button[aria-label='Remove {name} from stage']")
            for page in pages:
                assert wait_for(lambda: sorted(t["id"] for t in page.evaluate(STAGE)["tiles"]) == sorted(ids[1:])), page.evaluate(STAGE)

            # Everyone sees everyone else's video.
            for page, me in zip(pages, ids):
                others = set(ids) - {me}
                assert wait_for(lambda: others <= set(page.evaluate(PLAYING)), 40), (me, page.evaluate(PLAYING), page.evaluate(SUBSCRIPTIONS))

            # Chat reaches everyone.
            guests[0].fill("#chat-text", "hello from Gina")
            guests[0].press("#chat-text", "Enter")
            for page in pages:
                assert wait_for(lambda: "hello from Gina" in page.inner_text("#chat-messages"))

            # The host's theme: an accent and a face from the server's own fonts, on every page's stage.
            host.fill("#theme-accent", "#c800c8")
            host.select_option("#theme-font", "serif")
            for page in pages:
                assert wait_for(lambda: page.evaluate(THEME) == {"accent": "#c800c8", "nameFont": '"Tally Serif", serif', "serifLoaded": 1}), page.evaluate(THEME)

            # The host puts Gina's message on screen: every page's stage shows it as a lower third.
            host.click("#chat-messages li:has-text('hello from Gina') button.show-comment")
            for page in pages:
                assert wait_for(lambda: page.evaluate(COMMENT) == "Gina Guesthello from Gina"), page.evaluate(COMMENT)

            # A layout switch redraws every page's stage.
            before = [page.evaluate(STAGE) for page in pages]
            host.click("#layouts button[data-layout='sidebar']")
            for page, old in zip(pages, before):
                assert wait_for(lambda: page.evaluate(STAGE)["layout"] == "sidebar")
                assert page.evaluate(STAGE)["tiles"] != old["tiles"]
            shoot(host, "studio")
            shoot(guests[1], "studio-guest")

            # A logo from the host's uploads shows on every page's stage.
            logo = ROOT / "web" / "img" / "test-logo.png"
            host.set_input_files("#logo-file", str(logo))
            for page in pages:
                assert wait_for(lambda: page.evaluate("document.querySelector('#stage .logo')?.naturalWidth || 0") > 0), "the logo never showed"

            # A guest cannot change the stage: an error, and nothing changes.
            refused = guests[1].evaluate("""() => window.studio.signaling.request('stage-set', {layout: 'solo'})
                .then(() => 'accepted', error => error.code)""")
            assert refused == "host_only"
            assert host.evaluate(STAGE)["layout"] == "sidebar"

            # Omar shares his screen: a source of its own that everyone plays and the host can stage.
            guests[1].click("#share-screen")
            guests[1].wait_for_selector("#share-screen[aria-pressed='true']")
            screen = wait_for(lambda: host.evaluate("""() => [...window.studio.state.participants.values()]
                .map(e => e.info).find(info => info.name === 'Omar Guest (screen)')?.id"""))
            assert screen, "the screen share never reached the host"
            assert wait_for(lambda: screen in host.evaluate(PLAYING), 30)
            host.click("button[aria-label='Add Omar Guest (screen) to stage']")
            assert wait_for(lambda: screen in [t["id"] for t in guests[0].evaluate(STAGE)["tiles"]])
            guests[1].click("#share-screen")
            assert wait_for(lambda: screen not in [t["id"] for t in host.evaluate(STAGE)["tiles"]])
            assert wait_for(lambda: host.locator(f"#backstage [data-participant='{screen}']").count() == 0)

            # Gina's socket is cut; her page reconnects and resumes within the grace period.
            guests[0].evaluate("window.studio.signaling.socket.close()")
            assert wait_for(lambda: guests[0].evaluate("window.studio.signaling.socket.readyState === 1"), 10)
            time.sleep(1)
            assert guests[0].evaluate("window.studio.state.me.id") == ids[1]
            assert ids[1] in [t["id"] for t in host.evaluate(STAGE)["tiles"]]
            guests[0].fill("#chat-text", "back again")
            guests[0].press("#chat-text", "Enter")
            assert wait_for(lambda: "back again" in host.inner_text("#chat-messages"))

            # Going live sends the program to the destination; the host sees its status, everyone the live badge.
            host.once("dialog", lambda dialog: dialog.accept())
            host.click("#go-live")
            assert wait_for(lambda: host.locator("#destinations li[data-status='live']").count() == 1, 20), host.inner_text("#destinations")
            assert "Live" in host.inner_text("#destinations")
            assert wait_for(lambda: guests[0].inner_text("#status") == "live")
            shoot(host, "studio-live")
            # The program draws the comment as the preview does: the name on the theme's accent,
            # bottom left; hidden, it is gone from both.
            key_url = f"{receiver.url()}/secret-stream-key-9Z7Q"
            assert close_to(grab_frame(key_url)[600, 70], ACCENT), "no comment in the program"
            host.click("#comment-clear")
            for page in pages:
                assert wait_for(lambda: page.evaluate(COMMENT) == "")
            assert not close_to(grab_frame(key_url)[600, 70], ACCENT), "the comment stayed in the program"
            # The button ends the broadcast only once the host's own page knows it is live.
            assert wait_for(lambda: host.inner_text("#status") == "live")
            host.once("dialog", lambda dialog: dialog.accept())
            host.click("#go-live")
            assert wait_for(lambda: host.locator("#destinations li[data-status='stopped']").count() == 1, 20), \
                f"destinations: {host.inner_text('#destinations')!r}, status: {host.inner_text('#status')!r}"
            assert receiver.publishes("secret-stream-key-9Z7Q") == 1
        finally:
            browser.close()
            receiver.stop()
