"""The package's shape (ARCHITECTURE.md): imports that run one way, no loose modules, modules of one idea."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from importlinter.cli import lint_imports

REPO = Path(__file__).parents[1]
PACKAGE = REPO / "medrecipe"


def test_imports_run_one_way():
    """import-linter's contracts in pyproject.toml: cli -> run -> hub -> compile -> (blocks, report) -> catalog ->
    (recipe, envs) -> (grading, errors); a back-edge or a cycle between sub-packages fails here."""
    assert lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True, no_logo=True) == 0


def test_no_loose_modules_but_the_import_free_ones():
    assert sorted(path.name for path in PACKAGE.glob("*.py")) == ["__init__.py", "errors.py", "grading.py"]
    for name in ("errors.py", "grading.py"):  # grading is embedded verbatim into generated files
        for node in ast.walk(ast.parse((PACKAGE / name).read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert not node.level and not (node.module or "").startswith("medrecipe"), f"{name}:{node.lineno}"
            elif isinstance(node, ast.Import):
                assert not any(alias.name.startswith("medrecipe") for alias in node.names), f"{name}:{node.lineno}"


def test_modules_hold_one_idea():
    """None above 400 lines unless its docstring says it is one table."""
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 400:
            docstring = ast.get_docstring(ast.parse(text)) or ""
            assert "one table" in docstring, f"{path.relative_to(REPO)}: {text.count(chr(10))} lines"


def test_help_and_version_load_no_recipe_model():
    """Every printed line passes recipe.untrusted; importing it must not load the pydantic model (0.2 s), so that
    `medrecipe --help` and `--version` answer at once. Measured in a fresh interpreter."""
    for option in ("--help", "--version"):
        program = ("import sys\nfrom medrecipe.cli.main import main\nsys.argv = ['medrecipe', %r]\ntry:\n    main()\n"
                   "except SystemExit:\n    pass\nprint([m for m in ('pydantic', 'medrecipe.recipe.model') if m in sys.modules], "
                   "file=sys.stderr)") % option
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
        assert done.stderr.strip().endswith("[]"), done.stderr
