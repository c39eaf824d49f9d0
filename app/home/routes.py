"""The 工作台 (home page) of each role."""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from app.home.services import workbench

bp = Blueprint("home", __name__)


@bp.get("/")
def index():
    return render_template("home/index.html", wb=workbench(current_user))
