"""A host Flask app whose POST route broadcasts a value to every session of ``/target`` on
every worker and host; a session whose Div says ``refuse`` raises in the handler."""
from gevent import monkey

monkey.patch_all()

from pathlib import Path

from flask import Flask, request

from bokeh_flask import BokehServer, broadcast, on_broadcast

app = Flask(__name__, static_folder=None)  # BokehJS is served at /static
BokehServer(app, apps={"/target": str(Path(__file__).resolve().parents[2] / "apps" / "update_target.py")})


@on_broadcast("/target", "value")
def show(doc, value: str) -> None:
    div = doc.get_model_by_name("value")
    if div.text == "refuse":
        raise RuntimeError("this session refuses broadcasts")
    div.text = value


@app.post("/push")
def push() -> dict[str, int]:
    return {"updated_here": broadcast("/target", "value", request.form["value"])}


@app.get("/health")
def health() -> str:
    return "ok"
