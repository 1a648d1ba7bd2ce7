"""The engine never loads the UI, and nothing heavy is imported by the app's startup path."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import pytest

import workbench

ENGINE_MODULES = sorted(
    module.name for module in pkgutil.walk_packages(workbench.__path__, prefix="workbench.")
)
UI_MODULES = ("textual", "rich", "screens")
HEAVY_MODULES = ("torch", "transformers", "llama_cpp", "peft", "trl", "datasets", "anthropic")


def loaded_after_import(module: str) -> set[str]:
    code = f"import {module}, sys, json; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    return {name.split(".")[0] for name in json.loads(result.stdout)}


def test_every_engine_module_is_listed() -> None:
    assert "workbench.cli" in ENGINE_MODULES and "workbench.workspace" in ENGINE_MODULES


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_engine_module_imports_no_ui(module: str) -> None:
    loaded = loaded_after_import(module)
    assert not loaded & set(UI_MODULES), f"{module} pulled in {loaded & set(UI_MODULES)}"


def test_app_startup_imports_nothing_heavy() -> None:
    loaded = loaded_after_import("screens.app")
    assert not loaded & set(HEAVY_MODULES), f"the app imports {loaded & set(HEAVY_MODULES)}"
