"""Bad input as a researcher gives it, each case a real `labkit` process in a lab folder of its own
(its runs/, lab log and torch cache inside): what the lab says, its exit status, and which files
it created or changed (none, for a refusal). tests/test_bad_inputs.py checks every case and that
docs/bad-inputs.md shows what the lab says today; benchmarks/refusals.py times them.

    .venv/bin/python tests/bad_inputs.py    # try every case, rewrite docs/bad-inputs.md
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "bad-inputs.md"
PATIENCE = 120  # seconds: a case still going by then has started work instead of refusing


@dataclass(frozen=True)
class Case:
    given: str  # what the researcher gave, as the docs show it
    args: tuple[str, ...]  # labkit's arguments, run in the case's folder
    says: str  # a part of what the lab must answer
    files: dict[str, str | bytes] = field(default_factory=dict)  # written in the folder first
    setup: Callable[[Path], None] | None = None  # what else the folder holds first
    in_the_lab: bool = True  # False: run where no lab is (LABKIT_ROOT unset, the folder holds no notebooks/)


@dataclass(frozen=True)
class Outcome:
    code: int | None  # None: still going after PATIENCE seconds, then killed
    said: str  # stderr and stdout, the lab folder's path left out, argparse's usage lines too
    changed: list[str]  # files the command created, changed or removed in the lab folder
    seconds: float


# ---- what a case's folder may hold first ----


@cache
def _template_store() -> Path:
    """An MLflow store with its schema (2 CPU-s of migrations), made once per process."""
    import logging

    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its INFO lines on creating the schema
    path = Path(tempfile.mkdtemp(prefix="labkit-bad-inputs-")) / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments(max_results=1)
    return path


def a_store(lab: Path) -> None:
    (lab / "runs").mkdir(exist_ok=True)
    shutil.copy(_template_store(), lab / "runs" / "mlflow.db")


def an_empty_store(lab: Path) -> None:
    (lab / "runs").mkdir(exist_ok=True)
    (lab / "runs" / "mlflow.db").write_bytes(b"")


def a_truncated_store(lab: Path) -> None:
    a_store(lab)
    store = lab / "runs" / "mlflow.db"
    store.write_bytes(store.read_bytes()[: store.stat().st_size // 2])


def faces(lab: Path) -> Path:
    from labkit.data.synthetic import write_synthetic_set

    return write_synthetic_set(lab / "faces", count=8, progress=False)


def faces_with(damage: Callable[[Path], None]) -> Callable[[Path], None]:
    return lambda lab: damage(faces(lab))


def _an_empty_sketch(root: Path) -> None:
    (root / "sketches" / "ar-0001.png").write_bytes(b"")


def _a_damaged_photo(root: Path) -> None:
    (root / "photos" / "cuhk-0000.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")


def _an_oversized_photo(root: Path) -> None:
    from PIL import Image

    Image.new("1", (12_000, 12_000)).save(root / "photos" / "xm2vts-0002.png")  # past PIL's bomb limit


def _an_unpaired_photo(root: Path) -> None:
    from PIL import Image

    Image.new("RGB", (64, 64)).save(root / "photos" / "lonely.png")


def an_empty_folder(lab: Path) -> None:
    (lab / "empty").mkdir()


def a_journal(lab: Path) -> None:
    (lab / "journal.md").write_text("no dated headings in here\n")


# ---- the cases ----

GLAD = "ablation: glad\n"
ON_FACES = ("ablate", "glad", "--set", "data_root=faces")  # a run on the folder `faces` sets up
CASES = [
    # a params file
    Case("an empty params file", ("ablate", "p.yaml"), "the params file is empty", {"p.yaml": ""}),
    Case("a params file of comments only", ("ablate", "p.yaml"), "the params file is empty", {"p.yaml": "# lr: 1\n"}),
    Case("a params file that is not there", ("ablate", "nosuch.yaml"), "nosuch.yaml"),
    Case("a folder given as the params file", ("ablate", "empty"), "empty", setup=an_empty_folder),
    Case("a list, not names and values", ("ablate", "p.yaml"), "p.yaml", {"p.yaml": "- glad\n- lr: 1\n"}),
    Case("YAML that does not parse", ("ablate", "p.yaml"), "p.yaml", {"p.yaml": GLAD + "lr: [1\n"}),
    Case("a key given twice", ("ablate", "p.yaml"), "given twice", {"p.yaml": GLAD + "lr: 1e-4\nlr: 2e-4\n"}),
    Case(
        "a file that is not UTF-8", ("ablate", "p.yaml"), "not UTF-8", {"p.yaml": (GLAD + "# 学习率\n").encode("gbk")}
    ),
    Case("no `ablation:`", ("ablate", "p.yaml"), "names no ablation", {"p.yaml": "lr: 1e-4\n"}),
    Case("an unknown ablation", ("ablate", "p.yaml"), "did you mean 'glad'", {"p.yaml": "ablation: gald\n"}),
    Case("an unknown ablation by name", ("ablate", "gald"), "did you mean 'glad'"),
    Case("a mistyped parameter", ("ablate", "p.yaml"), "did you mean 'lambda_l1'", {"p.yaml": GLAD + "lamda_l1: 5\n"}),
    Case("a wrong type", ("ablate", "p.yaml"), "must be int", {"p.yaml": GLAD + "n_epochs: ten\n"}),
    Case("a negative learning rate", ("ablate", "p.yaml"), "greater than 0", {"p.yaml": GLAD + "lr: -0.1\n"}),
    Case("a learning rate of .nan", ("ablate", "p.yaml"), "finite number", {"p.yaml": GLAD + "lr: .nan\n"}),
    Case("no generator filters", ("ablate", "p.yaml"), "at least 1", {"p.yaml": GLAD + "ngf: 0\n"}),
    Case(
        "four problems in one file",
        ("ablate", "p.yaml"),
        "ngf=0 must be at least 1",
        {"p.yaml": "ablation: baseline\nlamda_l1: 5\nn_epochs: ten\nlr: -0.1\nngf: 0\n"},
    ),
    Case(
        "an empty experiment name",
        ("ablate", "p.yaml"),
        "experiment must not be empty",
        {"p.yaml": GLAD + "experiment: ''\n"},
    ),
    Case("a choice not offered", ("ablate", "p.yaml"), "fid_backbone", {"p.yaml": GLAD + "fid_backbone: vgg\n"}),
    Case("a yes/no parameter given `maybe`", ("ablate", "p.yaml"), "fast", {"p.yaml": GLAD + "fast: maybe\n"}),
    Case("a `base:` that is not there", ("ablate", "p.yaml"), "nosuch.yaml", {"p.yaml": GLAD + "base: nosuch.yaml\n"}),
    Case(
        "a `base:` chain that comes back",
        ("ablate", "p.yaml"),
        "comes back to itself",
        {"p.yaml": GLAD + "base: p.yaml\n"},
    ),
    Case(
        "a style parameter in a face file", ("ablate", "p.yaml"), "temperature", {"p.yaml": GLAD + "temperature: 0.1\n"}
    ),
    # the data folder
    Case("a data folder that is not there", ("ablate", "glad", "--set", "data_root=nowhere"), "no such folder"),
    Case(
        "an empty data folder",
        ("ablate", "glad", "--set", "data_root=empty"),
        "the folder is empty",
        setup=an_empty_folder,
    ),
    Case("an empty (0-byte) sketch", ON_FACES, "an empty file (0 bytes)", setup=faces_with(_an_empty_sketch)),
    Case("a damaged photo", ON_FACES, "cannot read this image", setup=faces_with(_a_damaged_photo)),
    Case("a photo past PIL's decompression-bomb limit", ON_FACES, "too large", setup=faces_with(_an_oversized_photo)),
    Case("a photo without its sketch", ON_FACES, "has no sketch", setup=faces_with(_an_unpaired_photo)),
    # the machine
    Case("`device: gpu`", ("ablate", "glad", "--set", "device=gpu"), "is not auto, cpu, cuda"),
    Case("`device: cuda:7`", ("ablate", "glad", "--set", "device=cuda:7"), "cuda:7"),
    Case(
        "`--nproc 2` with `batch_size: 3`",
        ("ablate", "glad", "--nproc", "2", "--set", "batch_size=3"),
        "does not split",
    ),
    Case(
        "`fid_backbone: inception` without its weights",
        ("ablate", "glad", "--set", "fid_backbone=inception"),
        "inception",
    ),
    # the command line
    Case("`--set lr=-1`", ("ablate", "glad", "--set", "lr=-1"), "--set: invalid parameters: lr=-1"),
    Case("`--set 'lr=[1'`", ("ablate", "glad", "--set", "lr=[1"), "is not a value YAML can read"),
    Case("`--set experiment=`", ("ablate", "glad", "--set", "experiment="), "experiment must not be empty"),
    Case("`--set lamda_l1=5`", ("ablate", "glad", "--set", "lamda_l1=5"), "did you mean 'lambda_l1'"),
    Case("`--set lr` (no value)", ("ablate", "glad", "--set", "lr"), "NAME=VALUE"),
    Case("`--seeds 0`", ("ablate", "glad", "--seeds", "0"), "must be at least 1, got 0"),
    Case("`--seeds -2`", ("ablate", "glad", "--seeds", "-2"), "must be at least 1, got -2"),
    Case("`--seeds ten`", ("ablate", "glad", "--seeds", "ten"), "--seeds"),
    Case("`--workers 0`", ("ablate", "glad", "--workers", "0"), "must be at least 1, got 0"),
    Case("`--workers -1`", ("ablate", "glad", "--workers", "-1"), "must be at least 1, got -1"),
    Case("`--nproc 0`", ("ablate", "glad", "--nproc", "0"), "must be at least 1, got 0"),
    Case(
        "`--sample 0`", ("ablate", "glad", "--sample", "0", "--range", "lr=1e-5:1e-3:log"), "must be at least 1, got 0"
    ),
    Case("`--sample 4` without `--range`", ("ablate", "glad", "--sample", "4"), "--range"),
    Case("`--range` with a low above its high", ("ablate", "glad", "--sample", "2", "--range", "lr=1e-3:1e-5"), "lr"),
    Case("`--grid lr=` (no values)", ("ablate", "glad", "--grid", "lr="), "--grid"),
    Case("`--grid lamda_l1=1,2`", ("ablate", "glad", "--grid", "lamda_l1=1,2"), "did you mean 'lambda_l1'"),
    Case(
        "`--grid` and `--set` of one name", ("ablate", "glad", "--grid", "lr=1e-4,2e-4", "--set", "lr=1e-4"), "keep one"
    ),
    Case("an executor that does not exist", ("ablate", "glad", "--executor", "slurm"), "slurm"),
    Case("`labkit ablate` with nothing to run", ("ablate",), "params"),
    Case("a command that does not exist", ("ablates", "glad"), "invalid choice"),
    Case("`labkit synth --count 0`", ("synth", "faces", "--count", "0"), "must be at least 1, got 0"),
    Case("`labkit synth --count -3`", ("synth", "faces", "--count", "-3"), "must be at least 1, got -3"),
    Case("`labkit ui --port 70000`", ("ui", "--port", "70000", "--print-only"), "70000"),
    Case("`labkit demo --set ngf=8` (a face parameter)", ("demo", "--set", "ngf=8"), "a parameter every notebook has"),
    Case("`labkit demo --set device=gpu`", ("demo", "--set", "device=gpu"), "is not auto, cpu, cuda"),
    Case("`labkit ablate` where no lab is", ("ablate", "glad"), "no lab here", in_the_lab=False),
    Case("`labkit demo` where no lab is", ("demo",), "no lab here", in_the_lab=False),
    # the store
    Case("`labkit runs` where nothing has run yet", ("runs", "--all"), "nothing has run in this lab yet"),
    Case("`labkit compare` where nothing has run yet", ("compare",), "nothing has run in this lab yet"),
    Case("`labkit backup` where nothing has run yet", ("backup",), "nothing has run in this lab yet"),
    Case("`labkit runs --experiment nosuch`", ("runs", "--experiment", "nosuch"), "nosuch", setup=a_store),
    Case("`labkit compare --experiment nosuch`", ("compare", "--experiment", "nosuch"), "nosuch", setup=a_store),
    Case("`labkit report --experiment nosuch`", ("report", "--experiment", "nosuch"), "nosuch", setup=a_store),
    Case("`labkit runs` on an empty (0-byte) store", ("runs", "--all"), "is empty (0 bytes)", setup=an_empty_store),
    Case("`labkit compare` on an empty (0-byte) store", ("compare",), "is empty (0 bytes)", setup=an_empty_store),
    Case("`labkit ablate` on an empty (0-byte) store", ("ablate", "glad"), "is empty (0 bytes)", setup=an_empty_store),
    Case("`labkit backup` of an empty (0-byte) store", ("backup",), "is empty (0 bytes)", setup=an_empty_store),
    Case("`labkit runs` on a damaged store", ("runs", "--all"), "sqlite3", setup=a_truncated_store),
    Case("`labkit ablate` on a damaged store", ("ablate", "glad"), "sqlite3", setup=a_truncated_store),
    Case("`labkit backup` over an existing file", ("backup", "runs/mlflow.db"), "mlflow.db", setup=a_store),
    # the lab log, the other tools
    Case("`labkit log add` with a date that is none", ("log", "add", "--date", "31/2", "tried"), "31/2"),
    Case("`labkit log show --since` a word", ("log", "show", "--since", "yesterdayish"), "yesterdayish"),
    Case("`labkit log import` of a file that is not there", ("log", "import", "nosuch.md"), "nosuch.md"),
    Case(
        "`labkit log import` of a journal with no dates", ("log", "import", "journal.md"), "journal.md", setup=a_journal
    ),
    Case("`labkit landmarks` of a folder that is not there", ("landmarks", "nowhere"), "nowhere"),
    Case("`labkit align` of a folder that is not there", ("align", "nowhere"), "nowhere"),
    Case("`labkit stylize` without a decoder", ("stylize",), "needs a trained decoder"),
    Case("`labkit stylize --set temperature=-1`", ("stylize", "--set", "temperature=-1"), "temperature"),
    Case(
        "`labkit stylize` of a folder that is not there",
        ("stylize", "--content", "nowhere", "--decoder-run", "d"),
        "nowhere",
    ),
    Case("`labkit server` on a store URI it cannot read", ("server", "mysql://x"), "postgresql"),
]


# ---- trying one ----


def _files(lab: Path) -> dict[str, str]:
    return {
        str(p.relative_to(lab)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(lab.rglob("*"))
        if p.is_file()
    }


def _said(text: str, lab: Path) -> str:
    """What the lab said, the folder's own path left out and the repository's written <repo>, without
    argparse's usage block (its last line, the error, is kept)."""
    lines, in_usage = [], False
    text = text.replace(f"{lab}/", "").replace(str(lab), ".").replace(str(ROOT), "<repo>")
    for line in text.splitlines():
        if line.startswith("usage: "):
            in_usage = True
            continue
        if in_usage and line.startswith(" "):
            continue
        in_usage = False
        lines.append(line.rstrip())
    return "\n".join(lines).strip()


def attempt(case: Case, lab: Path) -> Outcome:
    """Run one case in `lab` (an empty folder)."""
    for name, content in case.files.items():
        (lab / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    if case.setup:
        case.setup(lab)
    before = _files(lab)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "LABKIT_"))},
        **({"LABKIT_ROOT": str(ROOT)} if case.in_the_lab else {}),
        "LABKIT_RUNS": str(lab / "runs"),
        "LABKIT_LOG": str(lab / "lablog"),
        "TORCH_HOME": str(lab / "torch"),
        "PYTHONPATH": str(ROOT),
    }
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "labkit.cli", *case.args],
            cwd=lab,
            env=env,
            capture_output=True,
            text=True,
            timeout=PATIENCE,
        )
        code, text = done.returncode, done.stderr + done.stdout
    except subprocess.TimeoutExpired as exc:
        code, text = None, (exc.stderr or b"").decode(errors="replace") + (exc.stdout or b"").decode(errors="replace")
    seconds = time.perf_counter() - started
    after = _files(lab)
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    return Outcome(code, _said(text, lab), changed, seconds)


# ---- the page ----


def _cell(text: str) -> str:
    return "<br>".join(f"`{line}`" if line else "" for line in text.replace("|", "\\|").replace("`", "'").splitlines())


def page(outcomes: list[tuple[Case, Outcome]]) -> str:
    rows = [
        f"| {case.given} | `labkit {' '.join(case.args)}` | {outcome.code} | {_cell(outcome.said)} | "
        f"{', '.join(outcome.changed) or 'nothing'} |"
        for case, outcome in outcomes
    ]
    return (
        "# Bad input and what the lab says\n\n"
        "Each row is a real `labkit` process run in an empty lab folder (its `runs/`, lab log and torch\n"
        "cache inside): what was given, the command, its exit status, what it printed (paths relative to\n"
        "the folder), and the files it created, changed or removed there. Every bad input is refused\n"
        "before a run, a kernel or a store exists. The rows are rewritten from the lab itself by\n"
        "`python tests/bad_inputs.py`, and `tests/test_bad_inputs.py` fails when one is out of date.\n\n"
        "| given | command | exit | the lab says | created or changed |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def documented() -> dict[str, str]:
    """given -> the row of that case in docs/bad-inputs.md."""
    lines = DOC.read_text().splitlines() if DOC.is_file() else []
    rows = lines[next((i + 1 for i, line in enumerate(lines) if line.startswith("|---")), len(lines)) :]
    return {row.split(" | ")[0].removeprefix("| "): row for row in rows if row.startswith("| ")}


def row(case: Case, outcome: Outcome) -> str:
    return page([(case, outcome)]).splitlines()[-1]


def main() -> None:
    outcomes = []
    for case in CASES:
        with tempfile.TemporaryDirectory(prefix="labkit-bad-input-") as folder:
            outcome = attempt(case, Path(folder))
        mark = "ok " if outcome.code == 2 and not outcome.changed and case.says in outcome.said else "BAD"
        print(f"{mark} {outcome.seconds:5.2f}s exit {outcome.code}  {case.given}")
        outcomes.append((case, outcome))
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(page(outcomes))
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
