"""Lifecycle hooks that print (the server log keeps stdout), so tests can grep for them."""


def on_session_created(session_context):
    print(f"lifecycle: session {session_context.id} created", flush=True)


def on_session_destroyed(session_context):
    print(f"lifecycle: session {session_context.id} destroyed", flush=True)
