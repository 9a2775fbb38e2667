"""Reading the user's YAML files (configs, search spaces): plain values only, bounded in size, one clear line on
anything else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from recipes.errors import UserError
from recipes.limits import MAX_YAML_BYTES


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
        UserError: a file larger than :data:`recipes.limits.MAX_YAML_BYTES`, one that uses aliases (``&a`` /
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
        raise UserError(
            f"{what} {path} holds a tag plain YAML does not take ({str(error.problem)[:80]}); write plain values"
        ) from None
    except yaml.YAMLError as error:
        line = getattr(getattr(error, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise UserError(f"{what} {path} is not valid YAML{where}; fix the syntax") from None
