"""Imports run one way (docs/design.md, Architecture): a module imports only from its own
layer or the layers below it, and zoo.metrics never imports models, trainer or recipe."""

import ast
import os

from conftest import REPO

LAYERS = [
    {"zoo", "zoo.config", "zoo.signature", "zoo.data", "zoo.distribute", "zoo.nets", "zoo.schedules",
     "zoo.corruption", "zoo.images", "zoo.progress", "zoo.latent", "zoo.tflite", "zoo.export_folder",
     "zoo.optimizers", "zoo.card"},
    {"zoo.metrics"},
    {"zoo.models"},
    {"zoo.trainer", "zoo.evaluation", "zoo.choices", "zoo.exporter", "zoo.pretrained"},
    {"zoo.recipe"},
    {"zoo.cli", "zoo.web", "zoo.__main__"},
]


def layer_of(module):
    for depth, layer in enumerate(LAYERS):
        if any(module == m or module.startswith(m + ".") for m in layer if m != "zoo") or module == "zoo":
            return depth
    raise AssertionError(f"{module} is in no layer of tests/test_layers.py")


def zoo_imports(path):
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "zoo":
            yield node.module
            for alias in node.names:  # from zoo import data → zoo.data
                if node.module == "zoo":
                    yield f"zoo.{alias.name}"
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "zoo")


def test_imports_run_one_way():
    problems = []
    for root, _, files in os.walk(os.path.join(REPO, "zoo")):
        for f in files:
            if not f.endswith(".py"):
                continue
            path = os.path.join(root, f)
            module = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".").removesuffix(".__init__")
            for imported in zoo_imports(path):
                if imported in ("zoo", "zoo.ZooError", "zoo.error_line") or module == "zoo":
                    continue
                if layer_of(imported) > layer_of(module):
                    problems.append(f"{module} imports {imported}")
    assert not problems, problems


def test_metrics_imports_nothing_from_models_trainer_or_recipe():
    for root, _, files in os.walk(os.path.join(REPO, "zoo", "metrics")):
        for f in files:
            imported = set(zoo_imports(os.path.join(root, f)))
            assert not {m for m in imported if m.startswith(("zoo.models", "zoo.trainer", "zoo.recipe",
                                                              "zoo.evaluation", "zoo.exporter"))}, (f, imported)
