"""``bokeh-flask serve`` with single sign-on flags that cannot work: one line, exit 2, no
traceback, and never the secret in the answer."""
from __future__ import annotations

from tests.support.cli import HELLO, assert_one_line_error, run_cli


def test_panels_oauth_secret_flag_is_refused_without_echoing_the_secret():
    result = run_cli("serve", str(HELLO), "--oauth-provider", "github", "--oauth-key", "app",
                     "--oauth-secret", "hunter2-secret")
    assert_one_line_error(result, "--oauth-secret would show the client secret in `ps`")
    assert "hunter2-secret" not in result.stderr + result.stdout


def test_an_incomplete_provider_is_one_line():
    result = run_cli("serve", str(HELLO), "--oauth-provider", "oidc", "--oauth-key", "app")
    assert_one_line_error(result, "--oauth-provider oidc needs --oauth-issuer URL")
