"""The auth-provider contract (contract 9.2): valid and invalid combinations, checked when
a provider is built, and the Flask-Login provider's start-up checks. In-process: these
are start-up decisions, no request is involved."""
from __future__ import annotations

import pytest
from flask import Flask
from flask_login import LoginManager
from tornado.web import RequestHandler

from bokeh_flask.app.auth.providers import (
    AuthError,
    AuthModule,
    AuthProvider,
    NullAuth,
    join_prefix,
    provider_from,
)
from bokeh_flask.app.config.settings import build_settings
from bokeh_flask.app.sessions.server import ServerCore
from bokeh_flask.blueprints.auth.login_handlers import FlaskLoginAuth, with_cookie_secret
from tests.support.auth import BOKEH_EXAMPLE_AUTH, WHOAMI


class Handler(RequestHandler):
    pass


def provider(**attrs) -> AuthProvider:
    """An AuthProvider subclass whose properties return ``attrs``."""
    names = ("get_user", "get_user_async", "login_url", "get_login_url", "login_handler",
             "logout_url", "logout_handler")
    body = {name: property(lambda self, n=name: attrs.get(n)) for name in names}
    return type("Custom", (AuthProvider,), body)()


def user(handler):
    return "u"


async def user_async(handler):
    return "u"


INVALID = {
    "both-user-functions": (dict(get_user=user, get_user_async=user_async, login_url="/login"),
                            "Only one of get_user or get_user_async"),
    "user-without-login": (dict(get_user=user), "one of login_url or get_login_url must be supplied"),
    "both-login-urls": (dict(get_user=user, login_url="/login", get_login_url=lambda h: "/x"),
                        "At most one of login_url or get_login_url"),
    "handler-with-get-login-url": (dict(get_user=user, get_login_url=lambda h: "/x", login_handler=Handler),
                                   "LoginHandler cannot be used with a get_login_url"),
    "login-handler-not-a-handler": (dict(get_user=user, login_url="/login", login_handler=object),
                                    "LoginHandler must be a subclass of tornado.web.RequestHandler"),
    "logout-handler-not-a-handler": (dict(logout_url="/logout", logout_handler=dict),
                                     "LogoutHandler must be a subclass"),
    "absolute-login-url": (dict(get_user=user, login_url="https://sso.example.com/login"),
                           "login_url must be a relative URL"),
    "protocol-relative-login-url": (dict(get_user=user, login_url="//sso.example.com/login"),
                                    "login_url must be a relative URL"),
    "absolute-logout-url": (dict(logout_url="http://example.com/logout"), "logout_url must be a relative URL"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_invalid_combinations_are_refused_with_bokehs_message(case):
    attrs, message = INVALID[case]
    with pytest.raises(AuthError, match=message):
        provider(**attrs)


def test_valid_combinations():
    assert not NullAuth().enabled and NullAuth().endpoints == []
    p = provider(get_user=user, login_url="/login", login_handler=Handler,
                 logout_url="/logout", logout_handler=Handler)
    assert p.enabled and p.endpoints == [("/login", Handler), ("/logout", Handler)]
    external = provider(get_user_async=user_async, get_login_url=lambda h: "https://sso/login")
    assert external.enabled and external.endpoints == []


def test_prefix_joining_adds_the_missing_slash():
    assert join_prefix("/pre", "/login") == join_prefix("/pre", "login") == "/pre/login"
    assert join_prefix("", "/login") == "/login"


def test_bokehs_example_module_loads():
    module = AuthModule(BOKEH_EXAMPLE_AUTH)
    assert module.login_url == "/login" and module.logout_url == "/logout"
    assert [url for url, _ in module.endpoints] == ["/login", "/logout"]


def test_broken_module_is_one_clear_error(tmp_path):
    path = tmp_path / "auth.py"
    path.write_text("import no_such_module_anywhere\n")
    with pytest.raises(AuthError, match="failed to load: ModuleNotFoundError") as error:
        AuthModule(path)
    assert "\n" not in str(error.value)


def _flask_app() -> Flask:
    return Flask(__name__, static_folder=None)


def _core(**settings) -> ServerCore:
    return ServerCore(build_settings(overrides=settings, environ={}), apps=[str(WHOAMI)])


# BokehServer(...) would gevent-patch this test process (Playwright must not run patched),
# so these call the start-up steps it runs: with_cookie_secret, provider_from, init_app.

def test_flask_login_standalone_needs_a_secret():
    with pytest.raises(AuthError, match="SECRET_KEY or cookie_secret"):
        FlaskLoginAuth(check_credentials=lambda u, p: True).init_app(_flask_app(), _core())


def test_flask_login_standalone_takes_cookie_secret_as_the_flask_key():
    app = _flask_app()
    settings = with_cookie_secret(app, build_settings(overrides={"cookie_secret": "s" * 32}, environ={}))
    FlaskLoginAuth(check_credentials=lambda u, p: True).init_app(app, _core())
    assert app.secret_key == settings.cookie_secret == "s" * 32 and app.login_manager is not None


def test_flask_secret_key_signs_tornado_cookies_without_cookie_secret():
    app = _flask_app()
    app.secret_key = "k" * 32
    assert with_cookie_secret(app, build_settings(environ={})).cookie_secret == "k" * 32


def test_flask_login_host_mode_needs_the_hosts_login_manager():
    with pytest.raises(AuthError, match="has no LoginManager"):
        FlaskLoginAuth().init_app(_flask_app(), _core())


def test_flask_login_standalone_refuses_a_second_login_manager():
    app = _flask_app()
    app.secret_key = "k"
    LoginManager(app)
    with pytest.raises(AuthError, match="already has a LoginManager"):
        FlaskLoginAuth(check_credentials=lambda u, p: True).init_app(app, _core())


def test_auth_argument_and_auth_module_setting_conflict():
    settings = build_settings(overrides={"auth_module": str(BOKEH_EXAMPLE_AUTH)}, environ={})
    with pytest.raises(AuthError, match="use one"):
        provider_from(str(BOKEH_EXAMPLE_AUTH), settings)


def test_invalid_module_via_auth_argument(tmp_path):
    path = tmp_path / "bad_auth.py"
    path.write_text("def get_user(handler):\n    return None\n")
    with pytest.raises(AuthError, match="When user authentication is enabled") as error:
        provider_from(path, build_settings(environ={}))
    assert str(path) in str(error.value)
