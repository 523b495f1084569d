#!/usr/bin/env python3
"""Open a shotgraph report in headless Chromium and check it as a reviewer's browser sees it.

Debian's ``chromium`` (``/usr/bin/chromium``; never a browser Playwright downloads), driven by
Playwright for Python. Checks: every shot card is there, every video has a poster that loads
and really plays (``readyState`` and a ``timeupdate`` past 0 s), the page runs no script and
logs no console error, and no request leaves the report's folder (every request is
intercepted; one outside the folder, or the origin of the loopback server it is served from,
is refused and reported). Keeps a full-page screenshot.

    .venv/bin/python scripts/report_browser_check.py pipelines/demo.report/index.html \
        --screenshot test-artifacts/report-demo.png [--http]

``--http`` serves the folder from a static server on 127.0.0.1 (as CI artifacts or GitHub
Pages would) instead of opening it from disk.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Route

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parent.parent
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# For each video: its poster loads, it plays, time moves. Resolves with one row per video.
PLAY_ALL = """async (timeoutMs) => {
  const rows = [];
  for (const v of document.querySelectorAll('video')) {
    const row = {shot: v.dataset.shot, poster: v.getAttribute('poster') || '', posterOk: false,
                 played: false, readyState: 0, time: 0, error: null};
    if (row.poster) {
      const img = new Image(); img.src = v.poster;
      try { await img.decode(); row.posterOk = img.naturalWidth > 0; } catch (e) {}
    }
    try {
      const moved = new Promise((ok, fail) => {
        v.addEventListener('timeupdate', function tick() {
          if (v.currentTime > 0) { v.removeEventListener('timeupdate', tick); ok(); } });
        v.addEventListener('error', () => fail(new Error('media error ' + v.error?.code)));
        setTimeout(() => fail(new Error('no timeupdate within ' + timeoutMs + ' ms')), timeoutMs);
      });
      await v.play();
      await moved;
      row.played = true;
    } catch (e) { row.error = String(e); }
    row.readyState = v.readyState; row.time = v.currentTime;
    v.pause();
    rows.push(row);
  }
  return rows;
}"""


def ensure_chromium() -> str | None:
    """Install Debian's chromium when it is missing, as ``make browser`` does (root and
    apt-get); None when it is there, else why it cannot be had."""
    if CHROMIUM.exists():
        return None
    try:
        done = subprocess.run(
            ["make", "-s", "browser", f"CHROMIUM={CHROMIUM}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        said = (done.stdout + done.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        said = f"make browser failed: {exc}"
    if CHROMIUM.exists():
        return None
    return said or f"no {CHROMIUM} after `make browser`"


@dataclass
class Findings:
    """What the browser saw."""

    cards: list[str] = field(default_factory=list)
    videos: list[dict[str, Any]] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    scripts: int = 0
    screenshot: str = ""

    @property
    def problems(self) -> list[str]:
        found = [f"console error: {e}" for e in self.console_errors]
        found += [f"request outside the report: {url}" for url in self.outside_requests]
        found += [f"a dialog opened: {d}" for d in self.dialogs]
        found += ["the page runs a script"] if self.scripts else []
        found += ["no shot card"] if not self.cards else []
        for v in self.videos:
            if not v["posterOk"]:
                found.append(f"{v['shot']}: no poster that loads ({v['poster']!r})")
            if not v["played"] or v["readyState"] < 2 or v["time"] <= 0:
                found.append(
                    f"{v['shot']}: did not play ({v['error']}, readyState {v['readyState']})"
                )
        return found


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Say nothing per request."""


@contextmanager
def served(folder: Path) -> Iterator[str]:
    """The folder on a static HTTP server on loopback; its base URL."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's chromium, headless, driven by Playwright; closed at the end."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def check_report(
    index: Path,
    screenshot: Path,
    *,
    http: bool = False,
    timeout_ms: int = 15_000,
    browser: Browser | None = None,
) -> Findings:
    """Open ``index`` (from disk, or served over loopback with ``http``) and check it, in a
    fresh context (no cache, no storage) of ``browser``, or of a chromium of its own."""
    if browser is None:
        with chromium() as launched:
            return check_report(index, screenshot, http=http, timeout_ms=timeout_ms,
                                browser=launched)  # fmt: skip
    folder = index.resolve().parent
    findings = Findings(screenshot=str(screenshot))
    with served(folder) if http else _disk(folder) as base:
        context = browser.new_context()

        def route(route: Route) -> None:
            url = route.request.url
            if url.startswith(base):
                route.continue_()
            else:
                findings.outside_requests.append(url)
                route.abort()

        try:
            context.route("**/*", route)
            page = context.new_page()
            page.on(
                "console",
                lambda m: findings.console_errors.append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: findings.console_errors.append(str(e)))
            page.on("dialog", lambda d: (findings.dialogs.append(d.message), d.dismiss()))
            page.goto(base + "index.html", wait_until="load")
            findings.cards = page.eval_on_selector_all("article.card", "els => els.map(e => e.id)")
            findings.scripts = page.evaluate("document.scripts.length")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
            findings.videos = page.evaluate(PLAY_ALL, timeout_ms)
        finally:
            context.close()
    return findings


@contextmanager
def _disk(folder: Path) -> Iterator[str]:
    yield folder.as_uri() + "/"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a shotgraph report in headless Chromium")
    parser.add_argument("index", type=Path)
    parser.add_argument("--screenshot", type=Path, default=Path("test-artifacts/report.png"))
    parser.add_argument("--http", action="store_true", help="serve it on loopback")
    args = parser.parse_args(argv)
    missing = ensure_chromium()
    if missing is not None:
        print(missing, file=sys.stderr)
        return 2
    findings = check_report(args.index, args.screenshot, http=args.http)
    summary = {"cards": len(findings.cards), "videos": len(findings.videos)}
    summary |= {"screenshot": findings.screenshot, "problems": findings.problems}
    print(json.dumps(summary, indent=2))
    return 1 if findings.problems else 0


if __name__ == "__main__":
    sys.exit(main())
