"""setup.cfg declares the package; this adds the shipped models to a built wheel.

``pip install .`` (or a wheel built from this folder) copies exported/ into the package as
zoo/shipped/, where ``zoo.load("cgan")`` finds it in any install (zoo.apps.pretrained,
SHIPPED_PLACES). An editable install (``pip install -e .``) reads exported/ in place.
"""

import os
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))


class BuildWithShippedModels(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = os.path.join(self.build_lib, "zoo", "shipped")
        shutil.rmtree(target, ignore_errors=True)  # no version left over from an earlier build
        shutil.copytree(os.path.join(HERE, "exported"), target)


setup(cmdclass={"build_py": BuildWithShippedModels})
