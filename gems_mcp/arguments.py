"""Tool arguments at the MCP boundary: unknown names refused, no coercion, every string bounded.

The SDK builds each tool's argument model from the function signature; that model ignores
unknown names and coerces ('5' -> 5). `strict` tightens it (and the published input schema says
``additionalProperties: false``); `check` bounds what a schema cannot (string lengths, control
characters, whole-pattern ids, nesting) before pydantic sees the values; `describe` turns a
validation error into one sentence per field, quoting at most a short prefix of a value.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ConfigDict, ValidationError

from gems_mcp import inputs
from gems_mcp.errors import InvalidRequest

ID_FIELDS = frozenset({"trajectory_id", "image_id", "skill", "id"})
"""Argument names (at any depth) whose values are ids, checked against inputs.ID_PATTERN."""
_LIMITS = {"experience": inputs.MAX_EXPERIENCE_CHARS, "note": inputs.MAX_NOTE_CHARS}
MAX_DEPTH = 6
MAX_URI_CHARS = 512


def strict(tool: Any) -> None:
    """Make a registered tool refuse unknown argument names and type coercion; its schema says so."""
    base: type[BaseModel] = tool.fn_metadata.arg_model
    if base.model_config.get("extra") == "forbid":
        return
    config = ConfigDict(**{**base.model_config, "extra": "forbid", "strict": True})
    model: type[BaseModel] = type(base.__name__, (base,), {"model_config": config, "__module__": base.__module__})
    tool.fn_metadata.arg_model = model
    tool.parameters = model.model_json_schema(by_alias=True)


def accepted(tool: Any) -> list[str]:
    """The argument names a tool takes, as the client spells them."""
    return [field.alias or name for name, field in tool.fn_metadata.arg_model.model_fields.items()]


def check(tool: Any, arguments: dict[str, Any]) -> None:
    """Refuse unknown names and oversized, unprintable or malformed values with one sentence (ToolError)."""
    names = accepted(tool)
    unknown = [k for k in arguments if k not in names]
    if unknown:
        listed = ", ".join(inputs.quoted(k) for k in unknown[:3]) + (" ..." if len(unknown) > 3 else "")
        raise ToolError(
            f"{tool.name} does not take {listed}; it accepts {', '.join(names) or 'no arguments'}."
        )
    try:
        # lists and objects some clients send as JSON strings are checked as the SDK will parse them
        for name, value in tool.fn_metadata.pre_parse_json(arguments).items():
            _check_value(name, name, value, 0)
    except InvalidRequest as exc:
        raise ToolError(f"{str(exc).rstrip('.')}.") from exc


def _check_value(path: str, key: str, value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise InvalidRequest(f"{path} is nested {depth} levels deep; at most {MAX_DEPTH} are allowed")
    if isinstance(value, str):
        if key in ID_FIELDS:
            inputs.identifier(value, path)
        else:
            inputs.free_text(value, path, _LIMITS.get(key, inputs.MAX_TEXT_CHARS))
    elif isinstance(value, list):
        if len(value) > inputs.MAX_LIST_ITEMS:
            raise InvalidRequest(f"{path} has {len(value)} items; at most {inputs.MAX_LIST_ITEMS} are allowed")
        for i, item in enumerate(value):
            _check_value(f"{path}.{i}", key, item, depth + 1)
    elif isinstance(value, dict):
        if len(value) > inputs.MAX_LIST_ITEMS:
            raise InvalidRequest(f"{path} has {len(value)} keys; at most {inputs.MAX_LIST_ITEMS} are allowed")
        for k, item in value.items():
            _check_value(f"{path}.{str(k)[: inputs.QUOTED_CHARS]}", str(k), item, depth + 1)


def describe(tool_name: str, exc: ValidationError) -> str:
    """'generate was called with arguments it does not accept: n: should be an integer (got '5').'"""
    fields = "; ".join(field_error(e) for e in exc.errors()[:5])
    more = f" (and {len(exc.errors()) - 5} more)" if len(exc.errors()) > 5 else ""
    return f"{tool_name} was called with arguments it does not accept: {fields}{more}."


def field_error(error: Any) -> str:
    """'layout.0.box.2: Input should be less than or equal to 1 (got 1.5)'; long values are cut."""
    where = ".".join(str(p) for p in error.get("loc", ()))[:80] or "argument"
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if error.get("type") == "extra_forbidden":
        return f"{where}: Extra inputs are not permitted (no field has this name)"
    got = "" if error.get("type") == "missing" else f" (got {inputs.quoted(error.get('input'))})"
    return f"{where}: {message}{got}"


def prompt_problem(prompt: Any, name: str, given: dict[str, Any]) -> str | None:
    """Why a prompts/get request cannot be served (unknown prompt, missing, unknown or bad argument), or None."""
    if prompt is None:
        return f"there is no prompt {inputs.quoted(name)}; prompts/list names the prompts"
    names = [a.name for a in prompt.arguments or []]
    missing = [a.name for a in prompt.arguments or [] if a.required and a.name not in given]
    if missing:
        return f"prompt {name} needs the argument(s) {', '.join(missing)}"
    unknown = [k for k in given if k not in names]
    if unknown:
        return f"prompt {name} does not take {inputs.quoted(unknown[0])}; it accepts {', '.join(names)}"
    for key, value in given.items():
        try:
            inputs.free_text(str(value), key)
        except InvalidRequest as exc:
            return str(exc)
    return None


def uri_problem(uri: str) -> str | None:
    """Why a resource URI is refused before any lookup (too long, a control character), or None."""
    try:
        inputs.free_text(unquote(uri), "the resource URI", MAX_URI_CHARS)
    except InvalidRequest as exc:
        return f"{exc}; resource URIs come from tool results (gems://images/<id>, gems://trajectories/<id>)"
    return None
