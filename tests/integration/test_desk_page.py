"""The desk page in headless Chromium (Debian's, driven by Playwright) against the real `oms serve`: an order entered
over FIX appears on the blotter live, its fill in the fills and the position; the risk actions halt and resume the
account. The page's last state is saved as var/desk.png (the README shows a copy: docs/desk.png)."""

from __future__ import annotations

import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from fix_gateway import tags as T
from fix_gateway.client import FixClient
from oms.adapters.api import ApiServer, ApiSettings
from oms.apps.local_api import local_core
from oms.apps.serve import load_config
from tests.integration.test_serve import configs, start_serve  # noqa: F401 - the fixture, and how serve starts

pytestmark = pytest.mark.integration

SCREENSHOT = Path(__file__).parents[2] / "var" / "desk.png"
ADMIN = "admin-dev-secret"
WAIT_MS = 20_000


@pytest.fixture
def page() -> Iterator[Page]:
    chromium = shutil.which("chromium")
    assert chromium, "the desk page test needs Debian's chromium: apt-get install chromium (scripts/setup.sh does)"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            browser.close()


def test_an_order_entered_over_fix_appears_on_the_desk_page_live(
    configs: tuple[Path, int],  # noqa: F811
    tmp_path: Path,
    page: Page,
) -> None:
    config, port = configs
    proc, api = start_serve(config)
    problems: list[str] = []
    seen = 0
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    client = FixClient("FIX.4.2", "CLIENT42", port, tmp_path / "client", password="client42-dev").start()
    try:
        page.goto(f"{api}/desk/?account=ACC1")
        page.fill("#key", ADMIN)
        page.click("#login button")
        page.wait_for_selector("#link.on")  # the stream is live
        assert page.input_value("#account") == "ACC1"

        client.new_order("desk-1", "AAPL", "1", "100", "150", account="ACC1")
        (ack,) = client.expect(1, timeout=30)
        row = page.wait_for_selector('#orders tr[data-client-order-id="desk-1"][data-status="new"]')
        assert row is not None and ack[T.ORDER_ID] == row.get_attribute("data-order-id")
        assert "CLIENT42" in row.inner_text()

        sell = httpx.post(f"{api}/v1/orders", headers={"X-API-Key": "trader1-dev-secret"}, timeout=30,
                          json={"account": "ACC2", "symbol": "AAPL", "side": "sell", "qty": "40", "price": "150"})
        assert sell.status_code == 201 and sell.json()["status"] == "filled", sell.text
        (filled,) = client.expect(1, timeout=30)
        assert (filled[T.CL_ORD_ID], filled[T.CUM_QTY]) == ("desk-1", "40")
        page.wait_for_selector('#orders tr[data-client-order-id="desk-1"][data-status="partially_filled"]')
        fill = page.wait_for_selector("#fills tbody tr[data-exec-id]")
        assert fill is not None and "desk-1" in fill.inner_text()
        page.wait_for_selector('#positions tr[data-symbol="AAPL"]')
        assert "INTERNAL" in page.inner_text("#fills tbody tr[data-exec-id]")
        admin = {"X-API-Key": ADMIN}
        (position,) = httpx.get(f"{api}/v1/accounts/ACC1/positions", headers=admin, timeout=30).json()["positions"]
        assert (position["qty"], position["market_value"], position["unrealized_pnl"]) == ("40", "6000", "0")
        risk = httpx.get(f"{api}/v1/accounts/ACC1/risk", headers=admin, timeout=30).json()
        assert risk["buying_power"] is not None and risk["drawdown_level"] == "none"

        page.click('[data-action="halted"]')
        page.wait_for_selector('#risk[data-trading-state="halted"]')
        client.new_order("desk-2", "AAPL", "1", "10", "150", account="ACC1")
        (halted,) = client.expect(1, timeout=30)
        assert (halted[T.ORD_STATUS], halted[T.CL_ORD_ID]) == ("8", "desk-2")
        page.wait_for_selector('#orders tr[data-client-order-id="desk-2"][data-status="rejected"]')
        page.click('[data-action="active"]')
        page.wait_for_selector('#risk[data-trading-state="active"]')

        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        seen = len(problems)

        page.fill("#key", "risk1-dev-secret")  # the risk role: risk and positions, no orders, no stream
        page.click("#login button")
        page.wait_for_selector("#orders tbody >> text=this key may not read orders")
        page.wait_for_selector('#risk[data-trading-state="active"]')
        page.wait_for_selector("#message >> text=stream: forbidden")
    finally:
        client.stop()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert problems[:seen] == []  # no script error, no resource refused (the page's CSP) or failed
    assert all("403 (Forbidden)" in p for p in problems[seen:])  # the risk key's refused reads of orders, only
    assert SCREENSHOT.stat().st_size > 10_000


def test_the_desk_page_ships_with_the_server_and_needs_no_network(configs: tuple[Path, int]) -> None:  # noqa: F811
    config, _ = configs
    proc, api = start_serve(config)
    try:
        page = httpx.get(f"{api}/desk/", timeout=30)
        home = httpx.get(f"{api}/", timeout=30)
        script = httpx.get(f"{api}/desk/desk.js", timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
    assert page.status_code == 200 and "<title>OMS desk</title>" in page.text
    assert "http" not in page.text.replace('rel="stylesheet"', "")  # nothing loaded from elsewhere
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert home.status_code in (301, 302, 307, 308) and home.headers["location"] == "/desk/"
    assert script.status_code == 200 and "new WebSocket" in script.text


def test_the_api_docs_page_renders_offline(page: Page) -> None:
    loaded = load_config()
    core = local_core(loaded)
    server = ApiServer(core.host, core.view, ApiSettings(port=0)).start()
    elsewhere: list[str] = []  # what came from anywhere but this server (the page's own blobs and data URLs aside)
    page.on("response", lambda r: None if r.url.startswith((server.url, "data:", "blob:")) else elsewhere.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{server.url}/docs/")
        page.wait_for_selector("text=OMS REST API")
        page.wait_for_selector("text=Risk actions")  # a tag of the document, rendered
        page.wait_for_selector("[id$='operation/setAccountTradingState']", state="attached")  # an operation, by id
    finally:
        server.stop()
    assert elsewhere == [] and errors == []
