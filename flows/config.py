"""The one typed config: flow parameter (Prefect UI form), YAML schema and `--set a.b=c` target.

Stage parameters live beside their rules in `tasks/`; the stage registry names each stage's section
and model, and `config_model` composes them with the other sections (`flows/options.py`), so a new
stage brings its config section with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import to_jsonable_python

from flows.engine.stage import Registry
from flows.options import RunOptions, WriteParams
from flows.stages import STAGES
from tasks.errors import ConfigError


class ConfigBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @property
    def store_url(self) -> str:
        return self.store or f"{self.output.rstrip('/')}/.winnow-store"


def config_model(stages: Registry) -> type[BaseModel]:
    """The config of a run of `stages`: the input, output and store, a section per stage (its params
    model, defaults unless it has required fields), then `write` and `run`."""
    sections = {
        stage.section: (stage.section_model, ... if _required(stage.section_model) else stage.section_model())
        for stage in stages
    }
    first, *rest = sections.items()
    return create_model(
        "CurationConfig",
        __base__=ConfigBase,
        __doc__="Everything a curation run depends on.",
        __module__=__name__,
        **dict([first]),
        output=(str, Field("out", description="Directory (or fsspec URL) for the final dataset and run summary.")),
        store=(
            str | None,
            Field(None, description="Artifact store for cached stage outputs; default: <output>/.winnow-store."),
        ),
        **dict(rest),
        write=(WriteParams, WriteParams()),
        run=(RunOptions, RunOptions()),
    )


def _required(model: type[BaseModel]) -> bool:
    return any(field.is_required() for field in model.model_fields.values())


CurationConfig = config_model(STAGES)


def apply_override(tree: dict, assignment: str) -> None:
    """Set `a.b.c=value` in a nested dict; the value is read as YAML (numbers, lists, booleans)."""
    dotted, sep, raw = assignment.partition("=")
    if not sep or not dotted:
        raise ConfigError(f"--set {assignment!r}: expected section.key=value")
    *parents, leaf = dotted.strip().split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {assignment!r}: {part!r} is not a section")
    node[leaf] = yaml.safe_load(raw) if raw.strip() else None


Config = TypeVar("Config", bound=BaseModel)


def load_config(
    path: Path | None = None,
    overrides: list[str] = (),
    base: dict[str, Any] | None = None,
    schema: type[Config] = CurationConfig,
    start: dict[str, Any] | None = None,
) -> Config:
    """YAML file or `start` (an earlier run's config) + `base` values + `--set` overrides, validated
    into `schema` (a CurationConfig; the training flow passes its TrainConfig)."""
    if path is not None and start is not None:
        raise ConfigError("give a config file or an earlier run to start from, not both")
    tree: dict[str, Any] = dict(start or {})
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read config ({exc})") from exc
        if not isinstance(loaded, dict | None):
            raise ConfigError(f"{path}: expected a mapping of sections, got {type(loaded).__name__}")
        tree = loaded or {}
    for key, value in (base or {}).items():
        if value is not None:
            tree[key] = value if not isinstance(value, dict) else {**tree.get(key, {}), **value}
    for assignment in overrides:
        apply_override(tree, assignment)
    try:
        return schema.model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or '<root>'}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid config: {problems}") from exc


def type_label(annotation: Any) -> str:
    """A field's type as a reader writes it: `tuple[BenchmarkSpec, ...]`, `bool | "auto"`."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return type_label(args[0])
    if origin is Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (Union, UnionType):
        return " | ".join(type_label(a) for a in args)
    if origin is None:
        return "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))
    return f"{origin.__name__}[{', '.join('...' if a is Ellipsis else type_label(a) for a in args)}]"


def reference_rows(model: type[BaseModel] = CurationConfig, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, description) for every leaf of the config tree."""
    rows = []
    for name, info in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(reference_rows(annotation, f"{key}."))
            continue
        default = (
            "required"
            if info.is_required()
            else json.dumps(to_jsonable_python(info.get_default(call_default_factory=True)), ensure_ascii=False)
        )
        rows.append(
            (key, type_label(annotation).replace("|", "\\|"), default, (info.description or "").replace("|", "\\|"))
        )
    return rows


def reference_markdown() -> str:
    """The config reference table (docs/reference/config.md, generated at build time by
    docs/hooks/config_reference.py)."""
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    lines += [f"| `{key}` | `{type_}` | `{default}` | {doc} |" for key, type_, default, doc in reference_rows()]
    return "\n".join(lines)
