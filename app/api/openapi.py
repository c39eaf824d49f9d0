"""The OpenAPI 3.1 document of ``/api/v1`` (served at ``/api/v1/openapi.json`` without a token).

Schemas are generated from the pydantic models the routes validate with, never written by
hand.  Modules add their operations with ``register_operation`` (cases here; the workflow
actions and the reports append theirs the same way) — the document is built on each request
from this registry.
"""
from __future__ import annotations

from typing import Any, Iterable, Optional

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

REF = "#/components/schemas/{model}"

PATHS: dict[str, dict[str, dict[str, Any]]] = {}
MODELS: dict[str, tuple[type[BaseModel], str]] = {}


def schema_ref(model: type[BaseModel], mode: str = "validation") -> dict[str, str]:
    """A ``$ref`` to ``model``'s schema, registering the model for the components section."""
    MODELS.setdefault(model.__name__, (model, mode))
    return {"$ref": REF.format(model=model.__name__)}


def json_body(model: type[BaseModel], description: Optional[str] = None) -> dict[str, Any]:
    body: dict[str, Any] = {"required": True, "content": {"application/json": {"schema": schema_ref(model)}}}
    if description:
        body["description"] = description
    return body


def json_response(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": schema_ref(model, "serialization")}}}


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """Query parameters generated from a pydantic model's fields."""
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        param = {"name": name, "in": "query", "required": name in required,
                 "schema": {k: v for k, v in prop.items() if k not in ("title", "description")}}
        if prop.get("description"):
            param["description"] = prop["description"]
        params.append(param)
    return params


def register_operation(path: str, method: str, operation: dict[str, Any],
                       models: Iterable[type[BaseModel]] = ()) -> None:
    """Add (or replace) ``method path`` in the document; ``path`` is relative to ``/api/v1``."""
    for model in models:
        schema_ref(model)
    PATHS.setdefault(path, {})[method.lower()] = operation


def build_document() -> dict[str, Any]:
    """The whole OpenAPI document."""
    from app.api.schemas_common import ErrorOut  # noqa: WPS433 (registered lazily)
    schema_ref(ErrorOut, "serialization")
    _keys, defs = models_json_schema([(m, mode) for m, mode in MODELS.values()], ref_template=REF)
    return {
        "openapi": "3.1.0",
        "info": {"title": "清源 矛盾纠纷多元化解平台 API", "version": "1.0",
                 "description": "以 `Authorization: Bearer <token>` 认证（`flask accounts token USERNAME` 签发）。"
                                "接口只返回令牌所属用户在网页上可见的数据；输入有误返回 422 并逐字段给出中文说明。"},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": {path: PATHS[path] for path in sorted(PATHS)},
        "components": {"schemas": defs.get("$defs", {}),
                       "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
    }
