"""Notebooks stay clean in git after they run.

The set-up installs nbstripout as the notebooks' git filter: git stores them without outputs,
counts or widget state, whatever was saved into them. One gap remains: `git status` calls a
file modified as soon as its size differs from the size git recorded, before it runs any
filter, so a notebook saved with outputs shows as modified although `git diff` is empty.
`refresh` closes it: when the saved notebook, filtered, is what git already has, git records
its new size (`git add` of identical content); a real change is left alone and shows as one.
It runs after every save in JupyterLab (a post-save hook) and after `jupyter nbconvert`
writes a notebook (a postprocessor), both configured in this environment by `install`.

    .venv/bin/python -m labkit.gitclean      # done by the set-up (make)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from nbconvert.postprocessors import PostProcessorBase


def _git(folder: Path, *args: str) -> str | None:
    out = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def refresh(path: str | Path) -> bool:
    """Record a tracked notebook's new size in git when, filtered, it is what git has; returns
    whether it did."""
    path = Path(path).resolve()
    if path.suffix != ".ipynb" or not path.is_file():
        return False
    root = _git(path.parent, "rev-parse", "--show-toplevel")
    staged = _git(path.parent, "ls-files", "--stage", "--", str(path)) if root else None
    if not staged:
        return False  # not in a repository, or not tracked
    relative = path.relative_to(Path(root).resolve()).as_posix()
    filtered = _git(Path(root), "hash-object", f"--path={relative}", str(path))  # through the clean filter
    if filtered != staged.split()[1]:
        return False  # a real change: git status should show it
    return _git(Path(root), "add", "--", relative) is not None


def post_save(model=None, os_path: str = "", contents_manager=None, **kwargs) -> None:
    """JupyterLab's post-save hook."""
    refresh(os_path)


class RefreshGitIndex(PostProcessorBase):
    """nbconvert's postprocessor: after it writes a notebook (--inplace, --to notebook)."""

    def postprocess(self, input: str) -> None:  # noqa: A002 (nbconvert's name)
        refresh(input)


def _merge(path: Path, settings: dict) -> None:
    config = json.loads(path.read_text()) if path.is_file() else {}
    for section, values in settings.items():
        config.setdefault(section, {}).update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2) + "\n")


def _hooks(prefix: str | Path) -> tuple[Path, Path]:
    folder = Path(prefix) / "etc" / "jupyter"
    return folder / "jupyter_server_config.json", folder / "jupyter_nbconvert_config.json"


def install(prefix: str | Path = sys.prefix) -> list[Path]:
    """Configure JupyterLab and nbconvert of this environment to call refresh after a save."""
    server, nbconvert = _hooks(prefix)
    _merge(server, {"FileContentsManager": {"post_save_hook": "labkit.gitclean.post_save"}})
    _merge(nbconvert, {"NbConvertApp": {"postprocessor_class": "labkit.gitclean.RefreshGitIndex"}})
    return [server, nbconvert]


# git's filter for the notebooks (.gitattributes names it): what `nbstripout --install` configures,
# plus the language info it would otherwise keep (it changes with the kernel's Python)
FILTER = {
    "filter.nbstripout.clean": f'"{sys.executable}" -m nbstripout',
    "filter.nbstripout.smudge": "cat",
    "filter.nbstripout.required": "false",
    "filter.nbstripout.extrakeys": "metadata.language_info",
    "diff.ipynb.textconv": f'"{sys.executable}" -m nbstripout -t',
}


def ensure(root: Path) -> list[str]:
    """The notebook filter in the lab's repository and the save hooks in this environment, set up
    where they are missing (a conda environment has no `make` to do it); what it set up."""
    done = []
    if _git(root, "rev-parse", "--git-dir") is not None and not _git(
        root, "config", "--get", "filter.nbstripout.clean"
    ):
        for key, value in FILTER.items():
            _git(root, "config", key, value)
        _git(root, "update-index", "-q", "--refresh")
        done.append("git's notebook filter (nbstripout)")
    if not _hooks(sys.prefix)[0].is_file():
        install()
        done.append("JupyterLab's and nbconvert's save hooks")
    return done


if __name__ == "__main__":
    for written in install():
        print(f"configured {written}")
    for done in ensure(Path.cwd()):
        print(f"configured {done}")
