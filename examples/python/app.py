"""A Flask app on gunicorn, deployed as it would be to Heroku: `dyno up` or `git push dyno main`."""

import os
import socket

from flask import Flask, render_template

app = Flask(__name__)


@app.route("/")
def index():
    return render_template(
        "index.html",
        dyno=os.environ.get("DYNO", "?"),
        release=os.environ.get("HEROKU_RELEASE_VERSION", "?"),
        host=socket.gethostname(),
    )


@app.route("/health")
def health():
    return {"ok": True, "dyno": os.environ.get("DYNO")}
