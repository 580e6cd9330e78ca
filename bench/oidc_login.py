"""Single sign-on: from the click that logs in to the app on screen, in Debian's chromium.

.. code-block:: bash

    .venv-3.12/bin/python bench/oidc_login.py --out bench/results/<date>-oidc.md   # ~1 minute

Three servers in one run, taking turns round by round, each round in a fresh browser
context (no cookies):

- ``bokeh-flask serve --oauth-provider oidc`` against oidc-provider-mock on loopback: the
  click on the provider's Authorize button, then the redirect back, the code exchanged for
  tokens and the ID token checked against the provider's keys, the redirect to the app, its
  page and websocket, until BokehJS shows the user's name;
- bokeh-flask's password login (``tests/auth/apps/login_server.py`` under gunicorn): the
  click on "Log in" until the app shows the user;
- ``bokeh serve`` (no login: it has none built in): the page load of the same kind of app,
  from ``goto`` until BokehJS shows it, the floor any login adds to.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.auth import LOGIN_SERVER, launch_flask_app  # noqa: E402
from tests.support.oidc import CLAIMS_APP, launch_sso_server, set_user, start_provider  # noqa: E402
from tests.support.servers import CHROMIUM, launch  # noqa: E402

READ = ("(name) => { const d = window.Bokeh && Bokeh.documents[0]; const m = d && d.get_model_by_name(name);"
        " return m ? m.text : null; }")
USER = "alice@example.com"


def shown(page, name: str, expected: str, started: float) -> float:
    page.wait_for_function(f"([n, e]) => ({READ})(n) === e", arg=[name, expected], timeout=30_000, polling=10)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="logins per server (default 8)")
    parser.add_argument("--out", type=Path, help="also write the report here")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    provider = start_provider()
    set_user(provider, USER, email=USER, name="Alice")
    sso = launch_sso_server(provider)
    password = launch_flask_app(LOGIN_SERVER, "gunicorn", env={"BOKEH_LOGIN_ATTEMPTS": "1000"})
    plain = launch("bokeh", apps=[CLAIMS_APP])
    times: dict[str, list[float]] = {"bokeh-flask SSO (OIDC)": [], "bokeh-flask password login": [],
                                     "bokeh serve, no login (page load)": []}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"])
            for round_ in range(args.rounds + 1):  # round 0 warms every server up, not counted
                context = browser.new_context()
                page = context.new_page()
                page.goto(sso.url + "/claims")
                page.fill("input[name=sub]", USER)
                started = time.perf_counter()
                page.press("input[name=sub]", "Enter")
                sso_time = shown(page, "who", USER, started)
                context.close()

                context = browser.new_context()
                page = context.new_page()
                page.goto(password.url + "/whoami")
                page.fill("input[name=username]", "alice")
                page.fill("input[name=password]", "alice-pw")
                started = time.perf_counter()
                page.click("button[type=submit]")
                password_time = shown(page, "who", "alice", started)
                context.close()

                context = browser.new_context()
                page = context.new_page()
                started = time.perf_counter()
                page.goto(plain.url + "/claims")
                plain_time = shown(page, "who", "None", started)
                context.close()
                if round_ == 0:
                    continue
                for kind, value in zip(times, (sso_time, password_time, plain_time)):
                    times[kind].append(value)
            browser.close()
    finally:
        for server in (plain, password, sso, provider):
            server.stop()
    lines = [f"# Single sign-on: click to app ({time.strftime('%Y-%m-%d %H:%M')})", "",
             f"`bench/oidc_login.py --rounds {args.rounds}`, chromium {CHROMIUM}, {os.cpu_count()} cores shared "
             f"with other work (load average {os.getloadavg()[0]:.1f} at the end); seconds from the click "
             "that logs in (bokeh serve: from the navigation) until BokehJS shows the app's user; "
             "one warm-up round not counted.", "",
             "| server | median | min | max | all |", "|---|---|---|---|---|"]
    for kind, values in times.items():
        lines.append(f"| {kind} | {statistics.median(values):.3f} | {min(values):.3f} | {max(values):.3f} | "
                     + ", ".join(f"{v:.3f}" for v in values) + " |")
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    sso_median, password_median, plain_median = medians.values()
    lines += ["", f"Ratios of medians: SSO / password login {sso_median / password_median:.2f}x; "
              f"SSO / bokeh serve page load {sso_median / plain_median:.2f}x.", ""]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
