"""AccessRule: who of the logged-in users may use an app (allow-lists of users, email
domains and groups), and the sealing of what a single sign-on login keeps in the store."""
from __future__ import annotations

from bokeh_flask.app.auth.access import AccessRule, user_groups
from bokeh_flask.app.auth.oauth_config import Sealer, spec_for


def test_a_rule_that_lists_nothing_allows_every_logged_in_user():
    assert AccessRule().allows("anyone", {})


def test_users_domains_and_groups_each_allow():
    rule = AccessRule(users=("carol",), domains=("Example.com",), groups=("staff",))
    assert rule.allows("carol", {})
    assert rule.allows("x", {"email": "x@EXAMPLE.com"})
    assert rule.allows("x", {"groups": ["other", "staff"]})
    assert not rule.allows("x", {"email": "x@example.com.evil.test", "groups": ["staffers"]})


def test_an_unverified_email_counts_for_no_domain():
    rule = AccessRule(domains=("example.com",))
    assert not rule.allows("x", {"email": "x@example.com", "email_verified": False})
    assert rule.allows("x", {"email": "x@example.com", "email_verified": True})


def test_groups_come_from_a_list_a_string_or_a_nested_claim():
    assert user_groups({"roles": "admin"}, "roles") == {"admin"}
    assert user_groups({"realm_access": {"roles": ["a", "b", 3]}}, "realm_access.roles") == {"a", "b"}
    assert user_groups({"groups": None}, "groups") == set()


def test_sealed_data_opens_only_with_its_key_and_unchanged():
    data = {"refresh_token": "the-refresh-token", "claims": {"email": "ann@example.org"}}
    sealed = Sealer("secret-one").seal(data)
    assert "the-refresh-token" not in sealed and "ann@example.org" not in sealed
    assert Sealer("secret-one").open(sealed) == data
    assert Sealer("secret-two").open(sealed) is None
    flipped = sealed[:-3] + ("A" if sealed[-3] != "A" else "B") + sealed[-2:]
    assert Sealer("secret-one").open(flipped) is None
    assert Sealer("secret-one").open("not base64 at all!") is None


def test_provider_defaults():
    oidc = spec_for("oidc", "https://login.example.com/realms/x/", ("offline_access",))
    assert oidc.metadata_url == "https://login.example.com/realms/x/.well-known/openid-configuration"
    assert oidc.scope == ("openid", "offline_access") and oidc.user_claim == "email"
    github = spec_for("github")
    assert github.token_url == "https://github.com/login/oauth/access_token"
    assert github.api_url == "https://api.github.com" and github.user_claim == "login"
    assert spec_for("github", "https://git.example.com").api_url == "https://git.example.com/api/v3"
