"""House rules that a refactor could break without any feature test noticing."""

import ast
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


DEVICE_ALLOWED = {"numpy", "ai_edge_litert", "PIL", "scipy"}  # scipy: resampling a clip, imported only then


def _imported_modules(path):
    """Every module an import statement of ``path`` names (top level or inside a function), resolved to its full
    dotted name."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the device package
                yield "edge.device" + ("." + node.module if node.module else "")
            else:
                yield node.module


def test_the_device_package_imports_only_itself_numpy_litert_and_pillow():
    """The ground floor: no import statement of edge/device/ (at the top or inside a function) names the rest of
    the project or a training library; the standard library is allowed."""
    offending = []
    for path in sorted((ROOT / "edge" / "device").glob("*.py")):
        for module in _imported_modules(path):
            root = module.split(".")[0]
            inside = module == "edge.device" or module.startswith("edge.device.")
            if inside or root in DEVICE_ALLOWED or root in sys.stdlib_module_names or module == "__future__":
                continue
            offending.append(f"{path.relative_to(ROOT)}: {module}")
    assert offending == []
    assert set(_imported_modules(ROOT / "edge" / "device" / "model.py")) >= {"ai_edge_litert.interpreter"}  # sees it


def test_the_rooms_import_in_one_direction():
    """recipes imports neither tuning nor edge, except the device package; edge does not import tuning (any import
    statement, top level or inside a function)."""
    forbidden = {"recipes": ("tuning", "edge", "cli"), "edge": ("tuning", "cli")}
    offending = []
    for room, rooms in forbidden.items():
        for path in sorted((ROOT / room).rglob("*.py")):
            for module in _imported_modules(path):
                device = module == "edge.device" or module.startswith("edge.device.")
                if module.split(".")[0] in rooms and not device:
                    offending.append(f"{path.relative_to(ROOT)}: {module}")
    assert offending == []


def test_the_device_package_loads_without_the_rest_of_the_project():
    """Importing every device module loads nothing of recipes/, tuning/ or the rest of edge/, nor TensorFlow."""
    names = ", ".join(f"edge.device.{path.stem}" for path in sorted((ROOT / "edge" / "device").glob("[!_]*.py")))
    script = (
        f"import json, sys\nimport {names}\n"
        "roots = ('recipes', 'tuning', 'edge', 'tensorflow', 'keras', 'sklearn', 'tf_keras', 'matplotlib')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in roots)))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr[-2000:]
    loaded = set(json.loads(completed.stdout.strip().splitlines()[-1]))
    assert loaded and all(name == "edge" or name.startswith("edge.device") for name in loaded), loaded
    from edge.bundle import runtime_files

    copied = {name.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for name in runtime_files()}
    assert loaded <= copied  # the export's device bundle copies every module the device package is


@pytest.mark.parametrize("command", COMMANDS)
def test_flags_show_no_value_in_help(command):
    """A flag takes no value: its help row shows none (typer's own --help row is the one exception)."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(cli.app, [command, "--help"], env={"COLUMNS": "160"})
    assert result.exit_code == 0
    assert [line for line in result.output.splitlines() if "<bool>" in line and "--help " not in line] == []
