"""The bare Flask route the throughput figures are compared with: same Flask, same gunicorn,
no database, no template, no login.  ``gunicorn bench.bare_app:app``."""
from flask import Flask

app = Flask(__name__)


@app.get("/bare")
def bare():
    return "ok"
