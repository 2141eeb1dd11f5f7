"""The docs page in a real browser (Debian's headless Chromium driven by Playwright) against a real
server process: Authorize with the OAuth2 password flow, then call get-posts from the page."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.hexpost_servers import running_server, server_environment

CHROMIUM = os.environ.get("HEXPOST_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("docs-server")
    with running_server(directory, server_environment(directory), migrate=True) as server:
        yield server.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, tmp_path: Path) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 1600})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    yield opened
    opened.screenshot(path=str(tmp_path / "docs.png"), full_page=True)
    context.close()


def test_authorize_with_password_flow_then_get_posts_and_refresh_from_the_docs_page(
    base_url: str, page: Page
) -> None:
    email, password = "docs-reader@example.com", "correct horse battery"
    registered = httpx.post(f"{base_url}/api/v1/users/register", json={"email": email, "password": password})
    assert registered.status_code == 201, registered.text
    token = registered.json()["access_token"]
    refresh_token = registered.json()["refresh_token"]
    added = httpx.post(
        f"{base_url}/api/v1/posts/add-post",
        json={"text": "seen from the docs page"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert added.status_code == 200, added.text
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(f"{base_url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("hexpost")

    page.locator(".swagger-ui .auth-wrapper button.authorize").click()
    dialog = page.locator(".swagger-ui .dialog-ux .modal-ux")
    dialog.locator("#oauth_username").fill(email)
    dialog.locator("#oauth_password").fill(password)
    dialog.locator("button.authorize").first.click()
    expect(dialog.locator("button", has_text="Logout").first).to_be_visible()
    dialog.locator("button.btn-done").first.click()

    operation = page.locator("#operations-canonical_API-get_posts")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()

    live = operation.locator(".live-responses-table .response .response-col_status")
    expect(live).to_have_text("200")
    expect(operation.locator(".live-responses-table")).to_contain_text("seen from the docs page")
    refresh = page.locator("#operations-canonical_API-refresh")
    refresh.locator(".opblock-summary").click()
    refresh.locator("button.try-out__btn").click()
    refresh.locator("textarea.body-param__text").fill(json.dumps({"refresh_token": refresh_token}))
    refresh.locator("button.execute").click()
    expect(refresh.locator(".live-responses-table .response .response-col_status")).to_have_text("200")
    expect(refresh.locator(".live-responses-table")).to_contain_text("refresh_expires_in")
    # The refresh token worked once: the page's answer used it up.
    again = httpx.post(f"{base_url}/api/v1/users/refresh", json={"refresh_token": refresh_token})
    assert again.status_code == 401

    # Everything the page loaded came from hexpost itself: no CDN, no network.
    assert requested
    assert {urlsplit(url).netloc for url in requested if not url.startswith("data:")} == {
        urlsplit(base_url).netloc
    }
