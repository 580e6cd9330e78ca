"""Login throttling that a guesser cannot turn against the user it guesses at (core side:
no Flask).

Failed logins are counted in the login store, so every worker (and with Redis every host)
counts together, under three keys: the (user name, client address) pair, the address, and
the user name. A login attempt is refused (429) when, in the last ``login_attempt_window``
seconds:

1. its address has failed ``login_attempts`` times for this user name;
2. its address has failed ``login_address_attempts`` times, whatever the user names;
3. the user name has failed ``login_attempts`` times from all addresses together, and this
   address is one of those that failed for it: guessed at from many addresses, a user name
   gets one guess per address.

So a guesser's failures refuse its own address; an address that has not failed for a user
(and not failed too often overall) always has its password checked, whoever else guesses.
Refused attempts are not counted: a refusal ends one window after the address's own last
failure, and nobody else can renew it. A right password clears the user's and the pair's
counts, not the address's. Clients that share an address (a proxy without
``use_xheaders``, a NAT) share its counts.

Each attempt is reserved (counted as a failure) before its password is checked, in one
atomic step with the check that allows it; a right password releases it. Concurrent guesses
therefore cannot all pass the check before any of them is counted. When the store cannot
count an attempt, it is refused too (503): no password is checked uncounted.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from ..config.settings import Settings
from .logins import Attempts, AttemptStore, StoreUnavailable, Ticket

log = logging.getLogger(__name__)

#: Retry-After (s) of an attempt refused because the login store could not count it.
STORE_RETRY_AFTER = 30

#: Whether this process has warned of an untrusted proxy (see :meth:`LoginThrottle.note_proxy`).
_proxy_warned = False


@dataclass(frozen=True)
class Refusal:
    """A refused login attempt: why (for the log), in how many seconds to retry, and the
    HTTP status (503 when the store could not count it: no password goes unthrottled)."""

    reason: str
    retry_after: int
    status: int = 429


@dataclass(frozen=True)
class LoginThrottle:
    """The throttle's rules (module docstring) over a login store."""

    store: AttemptStore
    settings: Settings

    @staticmethod
    def keys(user: str, address: str) -> tuple[str, str, str]:
        """The (pair, address, user) keys; the address goes first in the pair because it
        holds no space, so no user name can make one pair's key another's."""
        return f"pair:{address} {user}", f"client:{address}", f"user:{user}"

    def attempt(self, user: str, address: str) -> Ticket | Refusal:
        """Reserve an attempt of ``user`` from ``address``, or refuse it (logged)."""
        pair, client, named = self.keys(user, address)
        per_user, per_address = self.settings.login_attempts, self.settings.login_address_attempts
        window = self.settings.login_attempt_window

        def refuse(attempts: Attempts) -> Refusal | None:
            refusals = []
            if (count := attempts.count(pair)) >= per_user:
                refusals.append((attempts.frees_in(pair, per_user),
                                 f"{count} failed logins of this user from this address"))
            if (count := attempts.count(client)) >= per_address:
                refusals.append((attempts.frees_in(client, per_address),
                                 f"{count} failed logins from this address"))
            if (count := attempts.count(named)) >= per_user and attempts.count(pair) >= 1:
                refusals.append((min(attempts.frees_in(named, per_user), attempts.frees_in(pair, 1)),
                                 f"{count} failed logins of this user from all addresses, this "
                                 f"address among them (one guess per address)"))
            if not refusals:
                return None
            wait, reason = max(refusals)
            return Refusal(f"{reason} in the last {window} s", max(1, math.ceil(wait)))

        try:
            result = self.store.reserve_attempt((pair, client, named), window, refuse)
        except StoreUnavailable as exc:
            result = Refusal(f"it cannot be counted: {exc}", STORE_RETRY_AFTER, status=503)
        if isinstance(result, Refusal):
            log.warning("login of %r from %s refused (%d, retry in %d s): %s",
                        user, address, result.status, result.retry_after, result.reason)
        return result

    def succeeded(self, user: str, address: str, ticket: Ticket) -> None:
        """The password was right: uncount the attempt and forget the user's failures and
        the pair's. The address's stay: a guesser with an account of its own must not reset
        its address's count by logging in."""
        self.store.release_attempt(ticket)
        pair, _, named = self.keys(user, address)
        self.store.clear_failures(pair)
        self.store.clear_failures(named)

    def note_proxy(self, address: str, forwarded_for: str | None) -> None:
        """Warn once per process when a login carries ``X-Forwarded-For`` that is not
        trusted: every client behind that proxy then has its address, and its counts."""
        global _proxy_warned
        if forwarded_for and not self.settings.use_xheaders and not _proxy_warned:
            _proxy_warned = True
            log.warning("login throttling: requests from %s carry X-Forwarded-For but --use-xheaders "
                        "is off, so every client behind that proxy counts as %s: one client's failed "
                        "logins refuse them all (see the README, 'Login throttling')", address, address)
