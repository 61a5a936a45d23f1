"""The pages people read: the figures README.md and docs/models/ show are the cards' and the
benchmarks' (rendered, never retyped), the README's first example runs as written, and no
page speaks of rounds, sessions or issues."""

import importlib.util
import os
import re
import shlex
import subprocess
import sys

import pytest
from conftest import REPO, run_python

spec = importlib.util.spec_from_file_location("render", os.path.join(REPO, "docs", "render.py"))
render = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render)


def test_every_rendered_figure_is_what_its_card_or_benchmark_says():
    assert not render.stale_pages(), "run `python docs/render.py`: these pages disagree with the cards"


def test_every_page_renders_its_blocks():
    for page in render.PAGES:
        text = open(os.path.join(REPO, page)).read()
        for match in render.BLOCK.finditer(text):
            assert match["body"].strip(), f"{page}: block {match['name']} is empty"


def test_the_readme_is_a_guide_of_about_250_lines():
    lines = open(os.path.join(REPO, "README.md")).read().splitlines()
    assert len(lines) <= 260, len(lines)


def test_no_page_or_comment_speaks_of_rounds_sessions_or_issues():
    words = re.compile(r"\b(this|last|next|previous|earlier) (round|session)s?\b|\bissues?\b|\brounds?'s\b",
                       re.I)
    found = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if d not in (".git", ".venv", "node_modules", "exported", "runs", "results")]
        for f in files:
            if f.endswith((".py", ".md", ".js", ".html", ".cfg")) and f != "test_docs.py":
                text = open(os.path.join(root, f), errors="replace").read()
                found += [f"{os.path.relpath(os.path.join(root, f), REPO)}: {m.group(0)}" for m in words.finditer(text)]
    assert not found, found


@pytest.mark.slow
def test_the_readmes_first_example_runs_as_written():
    text = open(os.path.join(REPO, "README.md")).read()
    example = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    out = run_python(example + "\nprint('RAN', digits.shape, fast.shape, scores.shape, clean.shape, filled.shape, "
                               "guessed.shape, elbo.shape, type(model).__name__)\n", cwd=REPO)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RAN (3, 28, 28, 1) (2, 28, 28, 1) (3,) (3, 28, 28, 1) (3, 28, 28, 1) (3,) (3,) VAE" in out.stdout
    assert out.stderr == ""  # zoo's lines only: no TensorFlow or LiteRT start-up notes


@pytest.mark.slow
def test_the_readmes_shell_commands_run_as_written(tmp_path):
    """The `zoo` lines of the README's first minute, typed into a shell in a fresh folder (all
    but `zoo web`, a server: tests/test_web.py drives it)."""
    text = open(os.path.join(REPO, "README.md")).read()
    block = re.search(r"From the shell:\n\n```bash\n(.*?)```", text, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.startswith("zoo ")]
    assert len(commands) >= 3, commands
    zoo = os.path.join(os.path.dirname(sys.executable), "zoo")
    for command in commands:
        out = subprocess.run([zoo, *shlex.split(command)[1:]], cwd=tmp_path, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0 and out.stderr == "", (command, out.stderr[-2000:])
    assert (tmp_path / "digits.png").is_file() and (tmp_path / "diffusion_samples.png").is_file()
