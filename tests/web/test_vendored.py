"""The web app's vendored front-end files are the pinned npm packages, with their licences."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "api" / "web" / "static" / "vendor"
PACKAGES = {"@uswds/uswds": "uswds", "htmx.org": "htmx", "@noble/curves": "noble"}


def test_versions_match_package_json_and_the_lock():
    pinned = json.loads((ROOT / "package.json").read_text())
    wanted = {**pinned["dependencies"], **pinned.get("devDependencies", {})}
    locked = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    copied = json.loads((VENDOR / "versions.json").read_text())
    for package in (*PACKAGES, "esbuild"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", wanted[package]), f"pin {package} exactly"
        assert locked[f"node_modules/{package}"]["version"] == wanted[package] == copied[package], package
    assert copied["@noble/hashes"] == locked["node_modules/@noble/hashes"]["version"]


def test_each_vendored_package_carries_its_licence():
    assert "public domain" in (VENDOR / "uswds" / "LICENSE.md").read_text(encoding="utf-8")
    assert "Zero-Clause BSD" in (VENDOR / "htmx" / "LICENSE").read_text(encoding="utf-8")
    for name in ("LICENSE-curves", "LICENSE-hashes"):
        assert "MIT License" in (VENDOR / "noble" / name).read_text(encoding="utf-8")


def test_the_files_are_the_packages_own():
    htmx = (VENDOR / "htmx" / "htmx.min.js").read_text(encoding="utf-8")
    copied = json.loads((VENDOR / "versions.json").read_text())
    assert f'version:"{copied["htmx.org"]}"' in htmx.replace(" ", "")
    css = (VENDOR / "uswds" / "css" / "uswds.min.css").read_text(encoding="utf-8")
    assert "uswds" in css and f"v{copied['@uswds/uswds']}" in css
    assert "noble-curves - MIT License" in (VENDOR / "noble" / "bls12-381.js").read_text(encoding="utf-8")
