"""Imports run one way (docs/design.md, Architecture): zoo/ has one folder per layer, and a module
imports only from its own layer or the layers below it. The one exception is the package face,
``zoo/__init__.py``, which names ``zoo.load`` and imports it when first used."""

import ast
import os
import subprocess
import sys

from conftest import REPO

# zoo's folders, from the bottom layer up (the data of this test; docs/design.md draws it)
LAYERS = ["core", "blocks", "metrics", "models", "training", "evaluation", "export", "apps", "recipe"]
FACE = {"zoo", "zoo.__main__"}  # the package face and `python -m zoo` stand outside the layers
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


def zoo_modules():
    for root, _, files in os.walk(os.path.join(REPO, "zoo")):
        for f in sorted(files):
            if f.endswith(".py"):
                path = os.path.join(root, f)
                yield os.path.relpath(path, REPO)[:-3].replace(os.sep, ".").removesuffix(".__init__"), path


def layer_of(module):
    parts = module.split(".")
    assert len(parts) >= 2 and parts[1] in LAYERS, f"{module} is in no layer folder of tests/test_layers.py"
    return LAYERS.index(parts[1])


def zoo_imports(path):
    tree = ast.parse(open(path).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "zoo":
            names = [node.module] if node.module != "zoo" else [f"zoo.{a.name}" for a in node.names]
            yield from names
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "zoo")


def test_every_module_sits_in_a_layer_folder():
    for module, _ in zoo_modules():
        if module not in FACE:
            layer_of(module)


def test_imports_run_one_way():
    problems = []
    for module, path in zoo_modules():
        if module in FACE:
            continue
        for imported in zoo_imports(path):
            if imported in FACE:
                problems.append(f"{module} imports the package face ({imported}): import from its layer")
            elif layer_of(imported) > layer_of(module):
                problems.append(f"{module} imports {imported}, a layer above it")
    assert not problems, problems


def test_the_face_defines_nothing_and_imports_nothing_heavy():
    """Only the module ``__getattr__`` that imports ``zoo.load`` on first use: ``import zoo``
    (and so ``zoo --help``) must not start TensorFlow."""
    tree = ast.parse(open(os.path.join(REPO, "zoo", "__init__.py")).read())
    defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))]
    assert defined == ["__getattr__"], defined
    code = "import sys, zoo, zoo.apps.cli; print(sorted(m for m in ('tensorflow', 'keras', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_functions_and_modules_stay_readable():
    long_functions, long_modules = [], []
    for module, path in zoo_modules():
        source = open(path).read()
        if source.count("\n") > MAX_MODULE_LINES:
            long_modules.append(f"{module}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long_functions.append(f"{module}.{node.name}: {length} lines")
    assert not long_functions, long_functions
    assert not long_modules, long_modules


def test_names_say_where_a_method_runs():
    """The capabilities' methods over images, labels, codes or a count run on NumPy and end in
    ``_numpy`` (docs/design.md, "Names"); the hooks that choose or select after training say so."""
    import inspect

    from zoo.models import capabilities

    hooks = {"normal_validation", "choose_anomaly_score"}  # NumPy in, a choice or a mask out
    unnamed = []
    for capability in vars(capabilities).values():
        if not (inspect.isclass(capability) and issubclass(capability, capabilities.Capability)):
            continue
        for name, method in vars(capability).items():
            takes = set(inspect.signature(method).parameters) if inspect.isfunction(method) else set()
            if takes & {"images", "labels", "codes", "num"} and name not in hooks and not name.endswith("_numpy"):
                unnamed.append(f"{capability.__name__}.{name}")
    assert not unnamed, unnamed


def test_no_model_method_shadows_a_keras_one():
    """A model's method of the same name as a keras.Model one would change what Keras does
    (``predict`` once meant a network's output): only the hooks Keras asks for are overridden."""
    import keras

    import zoo  # noqa: F401 - registers every model
    from zoo.models.base import _CLASSES, ZooModel

    overrides = {"train_step", "test_step", "call", "get_config", "from_config", "build", "metrics", "__init__"}
    keras_names = set(dir(keras.Model)) - overrides
    shadowing = [f"{cls.__name__}.{name}" for cls in (ZooModel, *_CLASSES.values()) for name in vars(cls)
                 if name in keras_names and not name.startswith("__")]
    assert not shadowing, shadowing
