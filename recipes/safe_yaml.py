"""Reading the user's YAML files (configs, search spaces): plain values only, bounded in size, one clear line on
anything else."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from edge.device.errors import UserError, printable
from edge.device.limits import MAX_YAML_BYTES

_STANDARD_TAGS = "tag:yaml.org,2002:"  # what YAML's "!!" stands for


class _AliasError(yaml.YAMLError):
    """A YAML alias (``*name``): config files never need one, and nested aliases expand exponentially."""


class _PlainLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise _AliasError("alias")
        return super().compose_node(parent, index)


def read_yaml(path: str | Path, what: str) -> Any:
    """Parse the YAML file ``path`` (a ``what``, e.g. ``"config file"``) into plain data.

    Raises:
        UserError: a file larger than :data:`edge.device.limits.MAX_YAML_BYTES`, one that uses aliases (``&a`` /
            ``*a``) or a tag safe YAML refuses (``!!python/...``), or one that is not YAML.
    """
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise UserError(f"{what} {path} is {size:,} bytes (limit {MAX_YAML_BYTES:,}); a {what} holds key: value lines")
    try:
        return yaml.load(path.read_text(errors="replace"), Loader=_PlainLoader)
    except _AliasError:
        raise UserError(f"{what} {path} uses YAML aliases (&name / *name); write each value out instead") from None
    except yaml.constructor.ConstructorError as error:
        tag = re.search(r"tag '(.*)'", str(error.problem))
        name = printable(tag.group(1).replace(_STANDARD_TAGS, "!!"))[:80] if tag else "an unknown tag"
        raise UserError(
            f"{what} {path} holds a tag plain YAML does not take ({name}{_line(error)}); write plain values"
        ) from None
    except yaml.YAMLError as error:
        raise UserError(f"{what} {path} is not valid YAML{_line(error)}; fix the syntax") from None


def _line(error: yaml.YAMLError) -> str:
    """`` at line N`` of the problem a YAML error points at, or ``""``."""
    line = getattr(getattr(error, "problem_mark", None), "line", None)
    return f" at line {line + 1}" if line is not None else ""
