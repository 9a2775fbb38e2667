"""House rules that a refactor could break without any feature test noticing."""

import json
import re
import subprocess
import sys

import pytest

import cli
from tests.helpers import ROOT

COMMANDS = sorted(command.name or command.callback.__name__ for command in cli.app.registered_commands)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^python3 -m venv \.venv && .*$", readme, flags=re.MULTILINE)
    assert len(commands) == 2 and "pytest" in commands[1] and "ruff format --check" in commands[1]
    assert commands[1] in (ROOT / ".ci" / "run").read_text().splitlines()


@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_every_command_imports_no_tensorflow(command):
    script = (
        f"import sys\nfrom typer.testing import CliRunner\nimport cli\n"
        f"result = CliRunner().invoke(cli.app, [{command!r}, '--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(name for name in ('tensorflow', 'keras', 'tf_keras') if name in sys.modules))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.strip().splitlines()[-1] == "[]"


def test_the_device_runtime_imports_no_training_code():
    """edge/runtime.py and the front end it uses for .wav clips run on a device with LiteRT and numpy only."""
    script = (
        "import json, sys\nimport edge.runtime, edge.mfcc, recipes.audio\n"
        "roots = ('recipes', 'edge', 'tensorflow', 'keras', 'sklearn', 'tf_keras', 'matplotlib')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in roots)))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr[-2000:]
    loaded = set(json.loads(completed.stdout.strip().splitlines()[-1]))
    assert loaded <= {
        "edge",
        "edge.runtime",
        "edge.mfcc",
        "edge.native_output",
        "edge.preflight",
        "edge.preprocessing",
        "recipes",
        "recipes.audio",
        "recipes.dataset",
        "recipes.errors",
        "recipes.suffixes",
        "recipes.limits",
        "recipes.windows",
        "recipes.series_files",
    }, loaded
    from edge.bundle import RUNTIME_FILES

    copied = {name.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for name in RUNTIME_FILES}
    assert loaded <= copied  # the export's device bundle copies every module the runtime imports


@pytest.mark.parametrize("command", COMMANDS)
def test_flags_show_no_value_in_help(command):
    """A flag takes no value: its help row shows none (typer's own --help row is the one exception)."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(cli.app, [command, "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    assert [line for line in result.output.splitlines() if "<bool>" in line and "--help " not in line] == []
