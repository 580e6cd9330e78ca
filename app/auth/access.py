"""Who of the logged-in users may use an app: allow-lists of users, email domains and groups.

A single sign-on provider logs in anyone with an account there (every employee, or with a
public provider such as GitHub, anyone at all): logging in says who a user is, an
:class:`AccessRule` says whether that user may use the apps. The command line's
``--oauth-allow-*`` flags make one rule for every app; a host app gives rules per app and
a function for anything else (see :class:`bokeh_flask.blueprints.OAuthLogin`).

Pure logic on a user's identity and claims: no request, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class AccessRule:
    """Allowed: a listed user, an email in a listed domain, or a member of a listed group.
    A rule that lists nothing allows every logged-in user. Domains count only for an email
    the provider says is verified (``email_verified``; providers that never send it, such as
    Entra ID, are trusted to send only their own users' addresses)."""

    users: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    #: the claim listing the user's groups or roles
    groups_claim: str = "groups"

    @property
    def open(self) -> bool:
        """Whether the rule allows every logged-in user."""
        return not (self.users or self.domains or self.groups)

    def allows(self, identity: str, claims: Mapping[str, Any]) -> bool:
        if self.open:
            return True
        if identity in self.users:
            return True
        if self.domains and _email_domain(claims) in {d.lower().lstrip("@") for d in self.domains}:
            return True
        return bool(self.groups) and not set(self.groups).isdisjoint(user_groups(claims, self.groups_claim))


def _email_domain(claims: Mapping[str, Any]) -> str | None:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email or claims.get("email_verified") is False:
        return None
    return email.rpartition("@")[2].lower()


def user_groups(claims: Mapping[str, Any], claim: str) -> set[str]:
    """The groups a claim lists: a list of names, or one name; a dotted claim reaches into
    nested objects (Keycloak's ``realm_access.roles``)."""
    value: Any = claims
    for part in claim.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, str):
        return {value}
    if isinstance(value, (list, tuple)):
        return {item for item in value if isinstance(item, str)}
    return set()
