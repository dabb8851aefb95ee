"""Which folders make up the `chatalign` package (everything else is in pyproject.toml).

chatalign/ is the core; data_schemas/ and every top-level folder holding a stage.py (a stage) are installed
as `chatalign.<folder>`, each with its subpackages, found here so that adding a stage needs no edit of the
packaging: its folder and its line in pyproject's `chatalign.stages` entry points.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
folders = ["data_schemas", *sorted(p.parent.name for p in ROOT.glob("*/stage.py") if p.parent.name != "chatalign")]
package_dir = {"chatalign": "chatalign", **{f"chatalign.{f}": f for f in folders}}
packages = [name for pkg, folder in package_dir.items()
            for name in [pkg, *(f"{pkg}.{sub}" for sub in find_packages(str(ROOT / folder)))]]

setup(package_dir=package_dir, packages=packages)
