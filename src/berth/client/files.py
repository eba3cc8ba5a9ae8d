"""Reading a template folder into the files a push sends.

A template is a folder with ``template.yaml`` (``template.yml`` is accepted too) and an
optional ``README.md`` (DESIGN §5). The server validates the document; this only reads
the files, and says plainly what is wrong when it cannot.
"""

from __future__ import annotations

import os
from pathlib import Path

from berth.client.errors import TemplateFolderError

__all__ = ["README_FILE", "TEMPLATE_FILE", "read_template_folder"]

TEMPLATE_FILE = "template.yaml"
README_FILE = "README.md"
_TEMPLATE_NAMES = ("template.yaml", "template.yml")


def read_template_folder(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{"template.yaml": text, "README.md"?: text}`` from a template folder.

    ``path`` may also name the ``template.yaml`` file itself. The document is always sent
    as ``template.yaml``, whichever of the two accepted names it has on disk.
    """
    folder = Path(path).expanduser()
    if folder.is_file() and folder.name in _TEMPLATE_NAMES:
        folder = folder.parent
    if not folder.exists():
        raise TemplateFolderError(f"template folder {folder} does not exist")
    if not folder.is_dir():
        raise TemplateFolderError(f"{folder} is not a folder: give the folder of a template.yaml")
    present = [folder / name for name in _TEMPLATE_NAMES if (folder / name).is_file()]
    if not present:
        raise TemplateFolderError(f"{folder} has no template.yaml")
    if len(present) > 1:
        raise TemplateFolderError(
            f"{folder} has both template.yaml and template.yml: keep one of them"
        )
    files = {TEMPLATE_FILE: _read_text(present[0])}
    readme = folder / README_FILE
    if readme.exists():
        files[README_FILE] = _read_text(readme)
    return files


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise TemplateFolderError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise TemplateFolderError(f"cannot read {path}: {exc.strerror or exc}") from None
