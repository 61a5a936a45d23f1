"""A plain install, as a user makes one without the source beside it: the wheel that
``pip install .`` builds carries the shipped models, so ``zoo.load("cgan")`` and ``zoo sample
diffusion`` work from any folder. Built offline from a copy of the checkout's files, installed
with no dependencies into a fresh venv that borrows this one's (TensorFlow and the rest) by a
path file, so it takes a minute and no network."""

import os
import subprocess
import sys
import sysconfig

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


def test_a_non_editable_install_finds_the_shipped_models_from_any_folder(tmp_path):
    source = tmp_path / "source"
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if os.path.isfile(os.path.join(REPO, name)):  # a file deleted in the working tree is no part of it
            os.makedirs(os.path.dirname(source / name), exist_ok=True)
            subprocess.run(["cp", os.path.join(REPO, name), str(source / name)], check=True)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                            str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = os.listdir(tmp_path / "dist")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q",
                                str(tmp_path / "dist" / wheel)], capture_output=True, text=True, timeout=600)
    assert installed.returncode == 0, installed.stderr[-3000:]
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site, "borrowed.pth"), "w") as f:  # the dependencies, not this checkout's zoo
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import zoo; cgan = zoo.load('cgan'); print(zoo.__file__); print(cgan.folder.folder); "
            "print(cgan.sample(labels=[3, 1, 4], seed=0).shape)")
    out = subprocess.run([python, "-c", code], cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    package, folder, shape = out.stdout.splitlines()
    assert package.startswith(site) and folder == os.path.join(site, "zoo", "shipped", "cgan")
    assert shape == "(3, 28, 28, 1)"
    out = subprocess.run([str(venv / "bin" / "zoo"), "sample", "diffusion", "--steps", "4", "-o", "d.png"],
                         cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stderr == "" and (elsewhere / "d.png").is_file(), out.stderr[-3000:]
