"""The blueprint template library: `blueprints/*.yaml`, validated into the model on load."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from .model import Blueprint, InvalidBlueprint, TemplateNotFound, parse_blueprint
from .model.errors import choose, preview
from .model.limits import FILE_BYTES

_PACKAGE_DATA = Path(__file__).with_name("data")
_CHECKOUT = Path(__file__).resolve().parents[2]


def data_dir(kind: str) -> Path:
    """`blueprints` or `prompts`: inside the installed wheel, else at the top of the checkout."""
    for base in (_PACKAGE_DATA, _CHECKOUT):
        candidate = base / kind
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"no {kind}/ folder next to the package or the checkout")


def template_names() -> list[str]:
    return sorted(p.stem for p in data_dir("blueprints").glob("*.yaml"))


def template_text(name: str) -> str:
    names = template_names()
    if name not in names:
        raise TemplateNotFound(f"unknown template {preview(name)}", field="template",
                               fix=choose(name, names) + " (blueprint://templates), or pass a full blueprint")
    return (data_dir("blueprints") / f"{name}.yaml").read_text(encoding="utf-8")


@cache
def _load(name: str) -> Blueprint:
    return load_blueprint_text(template_text(name), f"blueprints/{name}.yaml")


def load_template(name: str) -> Blueprint:
    """A fresh copy of a template's blueprint (callers may modify it)."""
    return _load(name).model_copy(deep=True)


def load_blueprint_text(text: str, source: str) -> Blueprint:
    """Parse YAML or JSON text into a Blueprint; errors name the source and field path."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise InvalidBlueprint([(where, f"not valid YAML/JSON ({getattr(exc, 'problem', exc)}).",
                                 "fix the syntax at that position")]) from None
    return parse_blueprint(data, source=source)


def load_blueprint_file(path: str | Path) -> Blueprint:
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > FILE_BYTES:
            raise InvalidBlueprint([(str(p), f"the file is too large: {size:,} bytes (at most {FILE_BYTES:,}).",
                                     "split the design or remove what it does not need")])
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidBlueprint([(str(p), f"cannot read the file ({exc.strerror}).",
                                 "pass an existing .yaml or .json blueprint")]) from None
    except UnicodeDecodeError as exc:
        # YAML and JSON blueprints are UTF-8 text; anything else is a wrong file or a wrong encoding.
        byte = f"0x{exc.object[exc.start]:02x} at offset {exc.start:,}"
        raise InvalidBlueprint([(str(p), f"not UTF-8 text (byte {byte}).",
                                 "save the blueprint as UTF-8, or pass the right file")]) from None
    return load_blueprint_text(text, str(p))


def summaries() -> list[dict]:
    """Name, app name and description of every template, for listings."""
    out = []
    for name in template_names():
        bp = _load(name)
        out.append({"name": name, "app": bp.app.name, "description": bp.app.description,
                    "entities": [e.name for e in bp.entities]})
    return out
