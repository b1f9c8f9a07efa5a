"""Headless Chromium helper: print a report to PDF, screenshot it, record its network log.

Chromium is started offline: background networking, component updates, sync and proxies are off
and every host name resolves to nothing (``--host-resolver-rules``), so a page that tried to load
anything from the internet would fail visibly, and ``--log-net-log`` records every request for the
tests to inspect. WebGL runs on the CPU through SwiftShader (``--use-angle=swiftshader
--enable-unsafe-swiftshader``), so the plotly 3D view renders without a GPU.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from alarscrew.errors import AlarscrewError

CHROMIUM_NAMES: tuple[str, ...] = ("chromium", "chromium-browser", "google-chrome",
                                   "google-chrome-stable")

OFFLINE_FLAGS: tuple[str, ...] = (
    "--headless=new",
    "--no-sandbox",  # containers run as root; the page is our own offline file
    "--disable-gpu-sandbox",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
    "--hide-scrollbars",
    "--mute-audio",
)


class BrowserError(AlarscrewError, RuntimeError):
    """Chromium is missing or failed."""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable (``ALARSCREW_CHROMIUM`` overrides), or None."""
    env = os.environ.get("ALARSCREW_CHROMIUM")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass(frozen=True)
class BrowserRun:
    """Outcome of one headless Chromium run."""

    output: Path | None
    net_log: Path | None
    stderr: str


def run_chromium(url: str, *, screenshot: Path | None = None, pdf: Path | None = None,
                 window_px: tuple[int, int] = (1280, 900), wait_ms: int = 8000,
                 net_log: Path | None = None, timeout_s: float = 90.0) -> BrowserRun:
    """Open ``url`` in offline headless Chromium and write a screenshot or a PDF.

    Parameters
    ----------
    url : str
        ``file://`` URL (a ``#fragment`` scrolls to that element first).
    screenshot, pdf : Path, optional
        Exactly one: PNG screenshot of the window, or the page printed to PDF.
    window_px : (width, height)
    wait_ms : int
        Virtual time Chromium lets the page run (scripts, WebGL) before capturing.
    net_log : Path, optional
        Where to write Chromium's JSON network log.
    timeout_s : float
        Wall-clock limit.

    Raises
    ------
    BrowserError
        Chromium is not installed, fails, times out or writes nothing.
    """
    exe = find_chromium()
    if exe is None:
        raise BrowserError("Chromium not found (tried " + ", ".join(CHROMIUM_NAMES)
                           + "); install Debian's `chromium` (make system-deps) or set "
                           "ALARSCREW_CHROMIUM")
    if (screenshot is None) == (pdf is None):
        raise BrowserError("run_chromium needs exactly one of screenshot= or pdf=")
    target = Path(screenshot or pdf)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="alarscrew-chromium-") as profile:
        args = [exe, *OFFLINE_FLAGS, f"--user-data-dir={profile}",
                f"--window-size={window_px[0]},{window_px[1]}",
                f"--virtual-time-budget={int(wait_ms)}"]
        if net_log is not None:
            args += [f"--log-net-log={net_log}", "--net-log-capture-mode=Everything"]
        if screenshot is not None:
            args.append(f"--screenshot={target}")
        else:
            args += [f"--print-to-pdf={target}", "--no-pdf-header-footer"]
        args.append(url)
        try:
            proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise BrowserError(f"Chromium did not finish within {timeout_s:.0f} s on {url}"
                               ) from exc
    if proc.returncode != 0 or not target.exists() or target.stat().st_size == 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise BrowserError(f"Chromium failed (exit {proc.returncode}) writing {target}: {tail}")
    return BrowserRun(output=target, net_log=net_log, stderr=proc.stderr)


def _read_net_log(net_log: Path) -> dict:
    text = net_log.read_text(encoding="utf-8", errors="replace")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # Chromium may exit before closing the JSON: keep the events up to the last complete one
        cut = text.rstrip().rstrip(",")
        end = cut.rfind("}")
        return json.loads(cut[:end + 1] + "]}")


@dataclass(frozen=True)
class NetRequest:
    """One URL request started by Chromium's network stack."""

    url: str
    initiator: str
    method: str

    @property
    def from_page(self) -> bool:
        """True for requests a web page started; Chromium's own background requests
        (component updater, sign-in, time sync) carry the initiator ``not an origin``."""
        return self.initiator != "not an origin"

    @property
    def external(self) -> bool:
        """True for requests that would leave the machine (http, https, ws, wss)."""
        return self.url.split(":", 1)[0].lower() in ("http", "https", "ws", "wss")


def net_requests(net_log: Path) -> list[NetRequest]:
    """Every ``URL_REQUEST_START_JOB`` event of a Chromium ``--log-net-log`` JSON file."""
    data = _read_net_log(net_log)
    types = data.get("constants", {}).get("logEventTypes", {})
    start = types.get("URL_REQUEST_START_JOB")
    if start is None:
        raise BrowserError(f"{net_log}: not a Chromium net log (no URL_REQUEST_START_JOB type)")
    out = []
    for ev in data.get("events", []):
        params = ev.get("params") or {}
        if ev.get("type") == start and "url" in params:
            out.append(NetRequest(url=params["url"], initiator=str(params.get("initiator", "")),
                                  method=str(params.get("method", ""))))
    return out
