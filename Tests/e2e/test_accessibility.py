"""Accessibility of every page a host or guest meets: axe-core's WCAG 2.1 A and AA rules on
the sign-in page, the dashboard, the green room, the studio and a guest's join page, at
1280×720 and 390×844; and the way in (sign up, create a broadcast, open its studio, put
yourself and an encoder stream on stage) done with the keyboard alone."""
import time

from axe_playwright_python.sync_playwright import Axe

from conftest import CHROMIUM_ARGS, wait_in_page
from test_studio import ROOT, SIZES, signed_up

AXE = Axe()
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}, "resultTypes": ["violations"]}


def audit(page, name):
    """axe at both sizes; every violation fails the test, with axe's own report."""
    reports = []
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        page.wait_for_timeout(400)
        results = AXE.run(page, options=WCAG)
        if results.violations_count:
            reports.append(f"{name} at {size}: {results.generate_report()}")
    page.set_viewport_size(SIZES["desktop"])
    return reports


def focused(page):
    return page.evaluate("document.activeElement?.id || document.activeElement?.textContent.trim()")


def tab_to(page, target, limit=40):
    """Presses Tab until the element with id `target` has focus; the ids passed on the way."""
    passed = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        current = focused(page)
        passed.append(current)
        if current == target:
            return passed
    raise AssertionError(f"Tab never reached #{target}; it went {passed}")


def activate(page, selector, then):
    """Enter on the element at `selector`, as a keyboard user would; waits for `then`. A
    room event that re-renders the stage between the focus and the key press takes the
    focus with the old button, as it would from a person: then they press again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    for attempt in range(3):
        page.locator(selector).focus()
        page.keyboard.press("Enter")
        try:
            page.wait_for_selector(then, timeout=10_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise


def test_pages_pass_axe_and_the_way_in_needs_no_mouse(start_tally):
    from playwright.sync_api import sync_playwright
    # The studio built into the binary, as a server installed anywhere serves it.
    tally = start_tally({"TALLY_HOST": "127.0.0.1"})
    missing = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=SIZES["desktop"])
            # A page's own files (the favicon among them) must all be there.
            context.on("response", lambda response: missing.append(response.url) if response.status == 404 and "/api/" not in response.url else None)
            page = context.new_page()
            page.goto(tally.url + "/")
            reports = audit(page, "sign-in")

            # Sign up with the keyboard: the tab, then the form in reading order, Enter to submit.
            tab_to(page, "tab-register")
            page.keyboard.press("Enter")
            assert focused(page) == "register-name", "choosing the sign-up tab puts the cursor in its first field"
            page.keyboard.type("Kay Board")
            assert tab_to(page, "register-email") == ["register-email"]
            page.keyboard.type(f"kay-{time.time_ns()}@example.com")
            assert tab_to(page, "register-password") == ["register-password"]
            page.keyboard.type("correct horse battery")
            page.keyboard.press("Enter")
            page.wait_for_url("**/dashboard.html")

            # Create a broadcast from the keyboard, then reach its studio link.
            tab_to(page, "title")
            page.keyboard.type("Keyboard show")
            page.keyboard.press("Enter")
            page.wait_for_selector("#broadcasts li")
            # The destinations form of the new broadcast opens from the keyboard too.
            activate(page, "#broadcasts details summary", then="#broadcasts details[open] input[id$='-key']")
            reports += audit(page, "dashboard")
            # An encoder stream of the host's, for the studio's stream controls.
            created = page.evaluate("""async () => (await fetch('/api/streams', {method: 'POST', headers: {'Content-Type': 'application/json',
                Authorization: 'Bearer ' + JSON.parse(localStorage.getItem('tally.session')).access_token},
                body: JSON.stringify({stream_id: 'cam', action: 'start'})})).status""")
            assert created == 201
            page.click("#broadcasts button.invite")
            page.wait_for_selector("#broadcasts button.invite[data-link]")
            invite_link = page.get_attribute("#broadcasts button.invite", "data-link")
            activate(page, "#broadcasts a:has-text('Open studio')", then="#camera")
            wait_in_page(page, "document.querySelector('#camera').options.length > 0")
            reports += audit(page, "green room")

            # Into the studio with the keyboard.
            tab_to(page, "enter-studio")
            page.keyboard.press("Enter")
            page.wait_for_selector("#studio:not([hidden])", timeout=20_000)
            page.wait_for_selector("#backstage [data-participant]")
            # Once the camera is publishing, the cursor waits in the chat box; the host steps on
            # stage from the keyboard.
            wait_in_page(page, "document.activeElement?.id === 'chat-text'", timeout=20_000)
            page.keyboard.type("Hello, keyboard")
            page.keyboard.press("Enter")
            page.wait_for_selector("#chat-messages li")
            activate(page, "button[aria-label='Add Kay Board to stage']", then="#stage .tile")
            # The encoder stream stands after the people, as the program will place it.
            activate(page, "button[aria-label='Add stream cam to stage']", then="#stage .tile[data-stream='cam']")
            assert page.evaluate("[...document.querySelectorAll('#stage .tile')].map(t => t.dataset.stream ?? t.dataset.participant).at(-1)") == "cam"
            assert "waiting for the encoder" in page.inner_text("#stage .stream-tile")
            reports += audit(page, "studio")
            activate(page, "button[aria-label='Remove stream cam from stage']", then="#stage:not(:has(.stream-tile))")

            streams = context.new_page()
            streams.goto(tally.url + "/streams.html")
            streams.wait_for_selector("#streams li[data-stream='cam']")
            reports += audit(streams, "encoder streams")

            guest = browser.new_context(viewport=SIZES["desktop"]).new_page()
            guest.goto(invite_link)
            reports += audit(guest, "guest join")
            assert not reports, "\n\n".join(reports)
            assert not missing, f"pages asked for files the server does not have: {missing}"
        finally:
            browser.close()


def test_a_form_submitted_before_the_page_has_loaded_still_goes_through_the_app(start_tally):
    """A quick keyboard user can press Enter before the page's data has arrived: with the layouts
    held back, creating a broadcast and entering the studio still work and never fall through to
    the browser's default form submission (which reloads the page with a query string)."""
    from playwright.sync_api import sync_playwright
    tally = start_tally({"TALLY_HOST": "127.0.0.1", "TALLY_WEB_DIR": str(ROOT / "web"), "TALLY_LAYOUTS_DIR": str(ROOT / "layouts")})
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = signed_up(browser, tally.url, "Quick Typist")
            held = []
            page.route("**/api/layouts", lambda route: held.append(route))
            page.reload(wait_until="domcontentloaded")
            wait_in_page(page, "document.querySelector('#title') !== null")
            while not held:
                page.wait_for_timeout(50)
            page.fill("#title", "Early show")
            page.press("#title", "Enter")
            page.wait_for_timeout(500)
            assert page.url.endswith("/dashboard.html"), f"the form fell through to a default submission: {page.url}"
            held.pop().continue_()
            page.unroute("**/api/layouts")
            page.wait_for_selector("#broadcasts li:has-text('Early show')")

            studio = page.get_attribute("#broadcasts a:has-text('Open studio')", "href")
            page.route("**/api/layouts", lambda route: held.append(route))
            page.goto(tally.url + studio, wait_until="domcontentloaded")
            while not held:
                page.wait_for_timeout(50)
            page.locator("#enter-studio").focus()
            page.keyboard.press("Enter")
            page.wait_for_timeout(500)
            assert page.url == tally.url + studio, f"the green room fell through to a default submission: {page.url}"
            held.pop().continue_()
            page.unroute("**/api/layouts")
            page.wait_for_selector("#studio:not([hidden])", timeout=20_000)
            page.wait_for_selector("#backstage [data-participant]")
        finally:
            browser.close()
