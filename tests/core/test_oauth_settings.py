"""The --oauth-* settings: complete or refused with one line naming the missing flag, Panel's
names accepted where they mean the same, and the secret shown nowhere."""
from __future__ import annotations

import pytest

from bokeh_flask.app.config.settings import OPTIONS, SettingsError, build_settings

ISSUER = "https://login.example.com"
COMPLETE = {"oauth_provider": "oidc", "oauth_issuer": ISSUER, "oauth_key": "app", "oauth_secret": "s3cret",
            "cookie_secret": "c" * 32}


def test_complete_settings_build_and_hide_the_secret():
    settings = build_settings(overrides=COMPLETE, environ={})
    assert settings.oauth_secret == "s3cret" and "s3cret" not in repr(settings)


@pytest.mark.parametrize("missing, message", [
    ("oauth_issuer", "--oauth-provider oidc needs --oauth-issuer URL"),
    ("oauth_key", "--oauth-provider oidc needs --oauth-key CLIENT_ID"),
    ("oauth_secret", "--oauth-provider oidc needs --oauth-secret-file PATH (or BOKEH_FLASK_OAUTH_SECRET)"),
    ("cookie_secret", "--oauth-provider keeps the login in a signed cookie: give --cookie-secret-file PATH"),
])
def test_a_missing_piece_is_named(missing, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_settings(overrides={k: v for k, v in COMPLETE.items() if k != missing}, environ={})


def test_oauth_settings_without_a_provider_and_clashing_logins_are_refused():
    with pytest.raises(SettingsError, match="--oauth-allow-domains needs --oauth-provider"):
        build_settings(overrides={"oauth_allow_domains": ("example.com",)}, environ={})
    with pytest.raises(SettingsError, match="drops the login cookie"):
        build_settings(overrides={**COMPLETE, "cookie_samesite": "Strict"}, environ={})
    with pytest.raises(SettingsError, match="expected a JSON object of strings"):
        build_settings(overrides={**COMPLETE, "oauth_extra_params": "[1]"}, environ={})


def test_panels_names_mean_the_same():
    settings = build_settings(environ={
        "PANEL_OAUTH_PROVIDER": "github", "PANEL_OAUTH_KEY": "app", "PANEL_OAUTH_SECRET": "s3cret",
        "PANEL_OAUTH_REDIRECT_URI": "https://dash.example.com/login", "PANEL_OAUTH_JWT_USER": "name",
        "PANEL_OAUTH_EXTRA_PARAMS": '{"allow_signup": "false"}', "BOKEH_COOKIE_SECRET": "c" * 32})
    assert (settings.oauth_provider, settings.oauth_key, settings.oauth_user_claim) == ("github", "app", "name")
    assert OPTIONS["oauth_user_claim"].flags == ("--oauth-user-claim", "--oauth-jwt-user")
    assert not OPTIONS["oauth_secret"].flags  # a flag would show the secret in ps
