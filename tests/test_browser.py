"""The HTML report in a real browser: headless Chromium opens the report of a small study.

Driven over the Chrome DevTools protocol on a pipe (``--remote-debugging-pipe``: NUL-terminated JSON on
file descriptors 3 and 4), so the test needs no driver binary and no extra package. Checks: no console
errors or exceptions, no network request besides the page itself, every image loads and is not blank,
and a run named ``<script>…`` shows as text (no script element exists). A screenshot is kept in
``build/test-artifacts/report.png`` (or ``$AUTOPHAGY_ARTIFACTS``). Skips only when no Chromium is
installed, and never in CI (``CI`` set), where ``.ci/run`` installs Debian's ``chromium``.
"""
import base64
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

import autophagy
from autophagy.report import write_report

ROOT = Path(__file__).resolve().parents[1]
EVIL = "<script>alert('x')</script> & <b>co</b>"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1200,900", "--remote-debugging-pipe"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


class Browser:
    """A headless Chromium and one page, spoken to over the DevTools pipe."""

    def __init__(self, exe: str, profile: Path):
        to_r, self._to_w = os.pipe()
        self._from_r, from_w = os.pipe()

        def fds():  # the child reads commands on fd 3 and writes replies on fd 4
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)

        self.proc = subprocess.Popen([exe, *FLAGS, f"--user-data-dir={profile}", "about:blank"], preexec_fn=fds,
                                     close_fds=False, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(to_r)
        os.close(from_w)
        self.messages: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        self._id = 0
        threading.Thread(target=self._read, daemon=True).start()
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._from_r, 1 << 16)
            if not chunk:
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                self.messages.put(json.loads(raw))

    def call(self, method: str, session: str | None = None, timeout: float = 20.0, **params) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            if reply.get("id") == self._id:
                assert "error" not in reply, (method, reply["error"])
                return reply.get("result", {})
            self.events.append(reply)

    def page(self, method: str, **params) -> dict:
        return self.call(method, session=self.session, **params)

    def wait_for(self, method: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self.messages.get(timeout=max(0.01, deadline - time.monotonic()))
            self.events.append(event)
            if event.get("method") == method:
                return event

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 - already gone
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


IMAGES_JS = """(() => Array.from(document.images).map(img => {
  const c = document.createElement('canvas');
  c.width = Math.max(1, Math.min(img.naturalWidth, 400)); c.height = Math.max(1, Math.min(img.naturalHeight, 300));
  const ctx = c.getContext('2d');
  let distinct = 0;
  if (img.complete && img.naturalWidth > 0) {
    ctx.drawImage(img, 0, 0, c.width, c.height);
    const d = ctx.getImageData(0, 0, c.width, c.height).data, seen = new Set();
    for (let i = 0; i < d.length; i += 4 * 7) { seen.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]); }
    distinct = seen.size;
  }
  return {complete: img.complete, width: img.naturalWidth, height: img.naturalHeight, distinct: distinct,
          scheme: img.src.split(':')[0]};
}))()"""


@pytest.fixture(scope="module")
def chromium():
    exe = find_chromium()
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have Chromium: .ci/run installs Debian's chromium package")
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    return exe


def test_report_in_headless_chromium(tmp_path, chromium):
    cfg = {"name": EVIL, "seed": 0, "replicates": 12, "generations": 4, "data": {"source": "gaussian", "dim": 2},
           "model": {"family": "gaussian"}, "loop": {"policy": "replace", "n_real": 40},
           "metrics": {"use": ["prd"], "n_eval": 80, "n_heldout": 80},
           "grid": {"loop.policy": ["replace", "augment"]},
           "report": {"metrics": ["recall", "param.trace_cov"], "pairs": [["precision", "recall"]]}}
    autophagy.run(cfg, out=tmp_path / "study")
    page_path = write_report(tmp_path / "study")
    url = page_path.resolve().as_uri()
    browser = Browser(chromium, tmp_path / "profile")
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.page(f"{domain}.enable")
        browser.page("Page.navigate", url=url)
        browser.wait_for("Page.loadEventFired")
        images = browser.page("Runtime.evaluate", expression=IMAGES_JS, returnByValue=True)["result"]["value"]
        probe = browser.page("Runtime.evaluate", returnByValue=True, expression=(
            "({h1: document.querySelector('h1').textContent, scripts: document.scripts.length,"
            " bold: document.querySelectorAll('b').length, text: document.body.innerText})"))["result"]["value"]
        shot = browser.page("Page.captureScreenshot", format="png")["data"]
        time.sleep(0.2)  # late console messages
        while not browser.messages.empty():
            browser.events.append(browser.messages.get())
    finally:
        browser.close()
    artefacts = Path(os.environ.get("AUTOPHAGY_ARTIFACTS", ROOT / "build" / "test-artifacts"))
    artefacts.mkdir(parents=True, exist_ok=True)
    (artefacts / "report.png").write_bytes(base64.b64decode(shot))

    events = browser.events
    errors = [e["params"] for e in events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "assert"))
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")]
    assert errors == []
    requests = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    assert [u for u in requests if u != url and not u.startswith("data:")] == []
    assert not [e for e in events if e.get("method") == "Network.loadingFailed"]
    assert len(images) >= 3  # two metric figures and the precision-recall plane
    for img in images:
        assert img["scheme"] == "data" and img["complete"] and img["width"] > 100, img
        assert img["distinct"] > 8, img  # not a blank (single-colour) image
    assert probe["h1"] == EVIL  # the run name renders as text...
    assert probe["scripts"] == 0 and probe["bold"] == 0  # ...and no element was injected
    assert "theory" in probe["text"].lower() and "param.trace_cov" in probe["text"]
