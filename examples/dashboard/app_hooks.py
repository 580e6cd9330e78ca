"""Lifecycle hooks for the dashboard directory app (picked up automatically)."""
import logging

log = logging.getLogger(__name__)


def on_server_loaded(server_context):
    log.info("dashboard: server loaded")


def on_server_unloaded(server_context):
    log.info("dashboard: server unloaded")


def _short(session_id):
    """Enough of the id to follow a session in the log: a whole unsigned id would let a
    reader of the log join that session."""
    return session_id[:8] + "…"


def on_session_created(session_context):
    log.info("dashboard: session %s created", _short(session_context.id))


def on_session_destroyed(session_context):
    log.info("dashboard: session %s destroyed", _short(session_context.id))


def process_request(request):
    """Runs on the HTTP request that creates a session.

    ``request`` has Tornado-style attributes (uri, path, query, arguments,
    headers, cookies). The returned dict is stored in the session token and is
    available as ``curdoc().session_context.token_payload``.
    """
    return {"request_path": request.path}
