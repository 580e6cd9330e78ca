"""Session-id modes (contract 3.1, 3.3, 3.6): signed, external-signed, signing without a key."""
from __future__ import annotations

import pytest
from bokeh.util.token import (
    check_session_id_signature,
    check_token_signature,
    generate_jwt_token,
    generate_session_id,
    get_session_id,
)

from tests.support.bokeh_version import bokeh3_only, embed_path
from tests.support.http import SECRET_KEY, assert_status, get, page_token
from tests.support.servers import APPS, launch

OTHER_KEY = "not-the-server-key-0123456789abcdefghijklmno"


@pytest.fixture(scope="module")
def signed(configured):
    return configured("signed")


@pytest.fixture(scope="module")
def external(configured):
    return configured("external")


def test_generated_ids_are_signed(signed):
    r = get(signed, "/hello")
    assert r.status_code == 200
    token = page_token(r.text)
    sid = get_session_id(token)
    assert len(sid) == 88, sid
    assert check_session_id_signature(sid, secret_key=SECRET_KEY.encode(), signed=True)
    assert not check_session_id_signature(sid, secret_key=OTHER_KEY.encode(), signed=True)
    assert check_token_signature(token, secret_key=SECRET_KEY.encode(), signed=True)


@pytest.mark.parametrize("sid_kind", ["unsigned", "forged", "truncated"])
def test_unsigned_or_forged_id_is_403(signed, sid_kind):
    sid = {
        "unsigned": generate_session_id(secret_key=None, signed=False),
        "forged": generate_session_id(secret_key=OTHER_KEY.encode(), signed=True),
        "truncated": generate_session_id(secret_key=SECRET_KEY.encode(), signed=True)[:-1],
    }[sid_kind]
    assert_status(get(signed, f"/hello?bokeh-session-id={sid}"), 403)
    assert_status(get(signed, "/hello", headers={"Bokeh-Session-Id": sid}), 403)
    assert_status(get(signed, embed_path("/hello", f"bokeh-session-id={sid}")), 403)


def test_validly_signed_id_is_accepted(signed):
    sid = generate_session_id(secret_key=SECRET_KEY.encode(), signed=True)
    r = get(signed, f"/hello?bokeh-session-id={sid}")
    assert r.status_code == 200
    assert get_session_id(page_token(r.text)) == sid


def test_forged_token_is_403(signed):
    sid = generate_session_id(secret_key=SECRET_KEY.encode(), signed=True)
    forged = generate_jwt_token(sid, secret_key=OTHER_KEY.encode(), signed=True)
    assert_status(get(signed, f"/hello?bokeh-token={forged}"), 403)
    good = generate_jwt_token(sid, secret_key=SECRET_KEY.encode(), signed=True)
    assert get(signed, f"/hello?bokeh-token={good}").status_code == 200


def test_external_signed_without_id_is_403(external):
    assert_status(get(external, "/hello"), 403)
    assert_status(get(external, embed_path("/hello")), 403)


def test_external_signed_with_signed_id_is_200(external):
    sid = generate_session_id(secret_key=SECRET_KEY.encode(), signed=True)
    r = get(external, f"/hello?bokeh-session-id={sid}")
    assert r.status_code == 200
    assert get_session_id(page_token(r.text)) == sid
    r = get(external, embed_path("/hello", f"bokeh-session-id={sid}"))
    assert r.status_code == 200


def test_external_signed_with_unsigned_id_is_403(external):
    assert_status(get(external, "/hello?bokeh-session-id=plain-id"), 403)


def test_external_signed_metadata_needs_no_id(external):
    assert get(external, "/hello/metadata").json() == {"url": "/hello", "data": {}}


@bokeh3_only
def test_autoload_checks_element_before_session(external):
    # our deliberate choice: the element id is validated first, so no session (and no 403)
    r = get(external, "/hello/autoload.js")
    assert_status(r, 400)


def test_sign_sessions_no_means_unsigned(configured):
    s = configured("sign_no")
    sid = get_session_id(page_token(get(s, "/hello").text))
    assert len(sid) == 44 and "." not in sid


@pytest.mark.parametrize("kind", ["gunicorn", "flask"])
def test_signing_without_key_fails_at_startup(kind):
    with pytest.raises(RuntimeError) as info:
        s = launch(kind, apps=[APPS / "hello.py"], env={"BOKEH_SIGN_SESSIONS": "yes"}, timeout=30)
        s.stop()  # only reached if it wrongly started
    message = str(info.value)
    assert "exited with" in message, message[-2000:]
    assert "exited with 0" not in message, message[-2000:]
    assert "BOKEH_SECRET_KEY" in message, message[-2000:]
