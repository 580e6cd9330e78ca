"""A host Flask app whose POST route pushes a value to every open session of an app with
``update_sessions`` (the README's example); a session whose Div says ``refuse`` raises."""
from gevent import monkey

monkey.patch_all()

from pathlib import Path

from flask import Flask, current_app, request

from bokeh_flask import BokehServer

app = Flask(__name__, static_folder=None)  # BokehJS is served at /static
BokehServer(app, apps={"/target": str(Path(__file__).resolve().parents[2] / "apps" / "update_target.py")})


@app.post("/push")
def push() -> dict[str, int]:
    value = request.form["value"]

    def update(doc) -> None:
        div = doc.get_model_by_name("value")
        if div.text == "refuse":
            raise RuntimeError("this session refuses updates")
        div.text = value

    return {"updated": BokehServer.core(current_app).update_sessions("/target", update)}


@app.get("/health")
def health() -> str:
    return "ok"
