"""``async def`` lifecycle hooks awaiting asyncio (Bokeh never awaits the session ones)."""
import asyncio


async def on_server_loaded(server_context):
    await asyncio.sleep(0.01)
    server_context.loaded_by_hook = "server loaded awaited"


async def on_session_created(session_context):
    await asyncio.sleep(0.01)
    await session_context.with_locked_document(
        lambda doc: doc.template_variables.update(hook="session created awaited"))


async def process_request(request):
    await asyncio.sleep(0.01)
    return {"from_async_process_request": request.path}
