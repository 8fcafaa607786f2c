"""How report.html reads: its rendered height, its warnings and its outside requests, for
three incidents, with full-page screenshots to look at.

The incidents: an error-rate incident (invalid input), a latency incident with two
contributing causes (slow database queries and LibreOffice), and a degraded run whose
Prometheus does not answer; plus a replay (`runbook run --from-record`) of the first. The
scenarios are backfilled into a private Prometheus (promtool, real TSDB blocks); each record
is written by `runner.run` as `runbook run` writes it; Debian's Chromium renders each
report.html at 1280 px wide.

Prints one line per page (and with --json one JSON object on the last line); asserts
nothing.
    .venv/bin/python -m benchmarks.report_pages [--png DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

from runbook_lib.execution import runner
from runbook_lib.lab.scenarios import ScenarioPrometheus, backfill, build, build_mix
from runbook_lib.records import record

WIDTH = 1280
WARNING = re.compile(r"\w+Warning\b")


def records(work: Path) -> dict[str, Path]:
    """The three incidents' records and a replay of the first, named by what they show."""
    error = build("high_error_rate", "invalid_input", 0)
    latency = build_mix("database-and-libreoffice-slow", 0)
    backfill([error, latency], work / "data", work / "work")
    prom = ScenarioPrometheus(work / "data", work / "prometheus.log").start()
    try:
        out = {
            "error_rate": _run(prom.url, error, work),
            "latency_two_causes": _run(prom.url, latency, work),
        }
    finally:
        prom.stop()
    out["degraded"] = _run("http://127.0.0.1:1", error, work, alert="GgenMcpMemoryCritical")
    params = runner.replay_params(out["error_rate"])
    out["replay"] = runner.run(params, work / "replays")
    return out


def _run(prom_url: str, sc, work: Path, alert: str | None = None) -> Path:
    log = sc.write_logs(work / f"{sc.instance}.log", since=sc.at - timedelta(minutes=20))
    snap = sc.write_host(work / f"{sc.instance}.json")
    labels = {k: v for k, v in sc.labels().items() if k != "alertname"}
    extra = {"live": False, "log_file": str(log), "host_snapshot": str(snap or "")}
    params = runner.alert_params(alert or sc.alert, labels, at=sc.at,
                                 starts_at=sc.alert_at.isoformat(), prometheus_url=prom_url,
                                 extra=extra)  # fmt: skip
    return runner.run(params, work / "records")


def measure(pages: dict[str, Path], png_dir: Path | None) -> dict[str, dict]:
    """Per page: rendered height, requests to other hosts, warning texts, top cause."""
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        try:
            for name, rec in pages.items():
                page = browser.new_page(viewport={"width": WIDTH, "height": 900})
                outside: list[str] = []
                page.on("request", lambda r, o=outside: o.append(r.url)
                        if not r.url.startswith(("file:", "data:")) else None)  # fmt: skip
                page.goto((rec / "report.html").as_uri(), wait_until="load")
                height = page.evaluate("document.documentElement.scrollHeight")
                if png_dir is not None:
                    page.screenshot(path=str(png_dir / f"{name}.png"), full_page=True)
                text = page.inner_text("body")
                out[name] = {
                    "height_px": height,
                    "outside_requests": len(outside),
                    "warnings": len(WARNING.findall(text)),
                    "status": record.summary(rec).status,
                    "top_cause": record.summary(rec).top_cause,
                }
                page.close()
        finally:
            browser.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--png", type=Path, help="write a full-page screenshot per report here")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-report-"))
    if args.png:
        args.png.mkdir(parents=True, exist_ok=True)
    try:
        result = measure(records(work), args.png)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, m in result.items():
        print(f"{name:<20} {m['height_px']:>6} px  {m['outside_requests']} outside requests  "
              f"{m['warnings']} warnings  {m['status']}, top cause {m['top_cause']}")  # fmt: skip
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
