"""Build the installable Blender add-on: ``python build.py`` -> ``dist/<id>-<version>.zip``.

The zip holds one folder, ``<id>/``, that is both

* a Blender 4.2+ **extension** (``blender_manifest.toml``; install with Edit > Preferences >
  Get Extensions > Install from Disk, or ``blender --command extension install-file``), and
* a legacy **add-on** for Blender 3.x (``bl_info`` in ``__init__.py``; Preferences > Add-ons >
  Install).

The backend and training packages are copied to ``<id>/_vendor/`` with a ``requirements.txt``
made from pyproject.toml, so that the add-on can run ``python -m backend serve`` with
``_vendor`` on PYTHONPATH and "Set Up Backend" knows what to install. The package is then
checked with Blender's own extension validator: ``blender --command extension validate``
when a Blender 4.2+ is on PATH (or given with ``--blender``), else the validator shipped in the
``bpy`` module when it is installed; without either the check is skipped with a message.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import re
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent
ADDON = REPO / "blender_addon"
MANIFEST = ADDON / "blender_manifest.toml"
VENDORED = ("backend", "training")
EXCLUDED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", "_vendor"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}
ZIP_DATE = (2024, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same zip


def manifest_field(text: str, key: str) -> str:
    """A top-level string value of blender_manifest.toml."""
    match = re.search(rf'^{key}\s*=\s*"([^"]*)"', text, re.M)
    if match is None:
        raise SystemExit(f"{MANIFEST}: no {key} = \"...\"")
    return match.group(1)


def bl_info_version(init: Path) -> str:
    """``bl_info["version"]`` of the add-on, read without importing it (it needs bpy)."""
    tree = ast.parse(init.read_text("utf-8"))
    for node in tree.body:
        targets = [getattr(t, "id", "") for t in getattr(node, "targets", [])]
        if isinstance(node, ast.Assign) and "bl_info" in targets:
            info = ast.literal_eval(node.value)
            return ".".join(str(v) for v in info["version"])
    raise SystemExit(f"{init}: no bl_info")


def files_under(root: Path) -> list[Path]:
    """Every file to ship under ``root``, sorted (caches and bytecode left out)."""
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in EXCLUDED_DIRS for part in rel.parts) or path.suffix in EXCLUDED_SUFFIXES:
            continue
        if path.is_file():
            out.append(path)
    return out


def requirements() -> str:
    """requirements.txt for "Set Up Backend": pyproject.toml's dependencies."""
    from blender_addon.core.venv_setup import dependencies_from_pyproject  # bpy-free

    deps = dependencies_from_pyproject((REPO / "pyproject.toml").read_text("utf-8"))
    return "# The backend's requirements (from pyproject.toml; written by build.py)\n" + \
        "\n".join(deps) + "\n"


def _write(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def build(out_dir: Path) -> Path:
    text = MANIFEST.read_text("utf-8")
    addon_id, version = manifest_field(text, "id"), manifest_field(text, "version")
    legacy = bl_info_version(ADDON / "__init__.py")
    if legacy != version:
        raise SystemExit(f"version mismatch: blender_manifest.toml says {version}, "
                         f"bl_info says {legacy}")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{addon_id}-{version}.zip"
    tmp = target.with_suffix(".zip.tmp")
    count = 0
    with zipfile.ZipFile(tmp, "w") as zf:
        for path in files_under(ADDON):
            _write(zf, f"{addon_id}/{path.relative_to(ADDON).as_posix()}", path.read_bytes())
            count += 1
        for package in VENDORED:
            for path in files_under(REPO / package):
                rel = path.relative_to(REPO / package).as_posix()
                _write(zf, f"{addon_id}/_vendor/{package}/{rel}", path.read_bytes())
                count += 1
        _write(zf, f"{addon_id}/_vendor/requirements.txt", requirements().encode())
        for extra in ("LICENSE", "README.md"):
            if (REPO / extra).is_file():
                _write(zf, f"{addon_id}/{extra}", (REPO / extra).read_bytes())
    tmp.replace(target)
    print(f"wrote {target} ({count} files, {target.stat().st_size / 1e6:.1f} MB)")
    return target


# --------------------------------------------------------------------------------------------
# Validation with Blender's own extension validator
# --------------------------------------------------------------------------------------------


def blender_version(blender: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([blender, "--version"], capture_output=True, text=True,
                             timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"Blender (\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else None


def bpy_validator() -> Path | None:
    """``blender_ext.py`` from the installed ``bpy`` module (found without importing bpy)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
        if found:
            return found[-1]
    return None


def validate(package: Path, blender: str | None) -> bool | None:
    """True/False: what Blender's validator said; None: no validator available (skipped)."""
    candidates = [blender] if blender else ["blender"]
    for exe in candidates:
        version = blender_version(exe)
        if version is not None and version >= (4, 2):
            command = [exe, "--factory-startup", "--command", "extension", "validate", str(package)]
            break
    else:
        script = bpy_validator()
        if script is None:
            print("validation skipped: no Blender 4.2+ on PATH and no bpy module installed "
                  "(pip install bpy, or pass --blender PATH)")
            return None
        command = [sys.executable, str(script), "validate", str(package)]
    result = subprocess.run(command, capture_output=True, text=True)
    output = (result.stdout + result.stderr).strip()
    ok = result.returncode == 0 and "error" not in output.lower()
    print(f"validation ({' '.join(command[:2])} ...): {'passed' if ok else 'FAILED'}\n{output}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=REPO / "dist",
                        help="folder for the zip (default dist/)")
    parser.add_argument("--blender", default=None,
                        help="a Blender 4.2+ executable to validate with "
                             "(default: 'blender' on PATH)")
    parser.add_argument("--no-validate", action="store_true", help="skip Blender's validator")
    args = parser.parse_args(argv)
    package = build(args.output)
    if not args.no_validate and validate(package, args.blender) is False:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
