"""Logout across workers and hosts: end a user's sessions here at once, and everywhere else
through :mod:`..auth.logout_events`, which every worker polls. A logout event the channel cannot
take now waits in :mod:`..auth.pending_logouts` and goes out once it can."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Mapping

from ..auth import logout_events
from ..auth.pending_logouts import PUBLISH_TTL, PendingLogouts
from .errors import CLOSE_SESSION_GONE

if TYPE_CHECKING:
    from .connection import ServerConnection
    from .contexts import ApplicationContext

log = logging.getLogger(__name__)


class UserSessions:
    """The sessions of users of one worker's core, as logouts end them."""

    def __init__(self, applications: Mapping[str, ApplicationContext], connections: set[ServerConnection],
                 events: logout_events.LogoutEvents | None, pending: PendingLogouts | None) -> None:
        #: the worker's apps and its live connections (the core's own, kept up to date there)
        self.applications = applications
        self.connections = connections
        #: where logouts are published and polled; None with authentication off
        self.events = events
        #: logouts the shared store has not taken yet (auth on only)
        self.pending = pending
        self._failing = False
        if events is not None and pending is not None:
            pending.deliver_with("publish", lambda user, ttl: events.publish(user))

    def end(self, user: str) -> int:
        """Expire every session ``user`` owns and close their websockets, here at once and,
        through the logout events, in every other worker within about ``POLL_INTERVAL``.
        Returns the count ended in this worker."""
        if self.events is not None:
            try:
                self.events.publish(user)
            except Exception as exc:  # the logout itself went through: the others hear later
                log.warning("could not tell the other workers and hosts that %r logged out (%s): "
                            "they will be told once the store answers", user, exc)
                if self.pending is not None:
                    self.pending.add("publish", user, PUBLISH_TTL)
        return self.end_here(user)

    def end_here(self, user: str) -> int:
        ended = 0
        for context in self.applications.values():
            for session in list(context.sessions.values()):
                if session.context is not None and session.context.user == user:
                    session.request_expiration()
                    ended += 1
        for connection in list(self.connections):
            owner = connection.session.context
            if owner is not None and owner.user == user:
                connection.transport.close(CLOSE_SESSION_GONE, "the user logged out")
        if ended:
            log.info("user %r logged out: ended %d sessions", user, ended)
        return ended

    def unavailable(self) -> str | None:
        """Why logouts cannot reach the other workers now (None: they can)."""
        if self.events is None:
            return None
        try:
            self.events.ping()
        except Exception as exc:
            return f"the logout events channel cannot be reached: {exc}"
        return None

    def apply_events(self) -> int:
        """The logout job: deliver pending logouts, then end here the sessions of users who
        logged out in another worker or host. Returns the count ended."""
        assert self.events is not None
        try:
            if self.pending is not None:
                self.pending.flush()
            digests = self.events.poll()
        except Exception as exc:  # the store is down: say so once, not every poll
            if not self._failing:
                log.warning("cannot read logout events (logouts elsewhere will not close tabs here): %s", exc)
            self._failing = True
            return 0
        if self._failing:
            log.warning("logout events readable again")
            self._failing = False
        if not digests:
            return 0
        owners = {session.context.user for context in self.applications.values()
                  for session in context.sessions.values() if session.context is not None}
        owners.update(c.session.context.user for c in self.connections if c.session.context is not None)
        return sum(self.end_here(user) for user in owners
                   if user is not None and logout_events.user_digest(user, self.events.namespace) in digests)
