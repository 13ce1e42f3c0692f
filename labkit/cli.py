"""The `labkit` command."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
from pathlib import Path

from .config import ParamError, SketchConfig
from .lease import LeaseHeld
from .paths import runs_dir, tracking_uri


class _HelpWithDefaults(argparse.HelpFormatter):
    """Each option's help ends with its default, unless the help says it or there is none to say."""

    def _get_help_string(self, action):
        help_ = action.help or ""
        if (
            action.option_strings
            and action.default not in (None, False, "", argparse.SUPPRESS)
            and "default" not in help_
        ):
            help_ += " (default: %(default)s)"
        return help_


class _Parser(argparse.ArgumentParser):
    """labkit's parser and its commands' (add_parser makes the parent's class): defaults shown."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpWithDefaults)
        super().__init__(*args, **kwargs)


def _no_progress(s) -> None:
    s.add_argument("--no-progress", action="store_true", help="no progress bars (for logs that are read later)")


def count(text: str) -> int:
    """A whole number of at least 1 (seeds, workers, processes, images): 0 or less is refused by
    argparse, naming the option, before any work."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def port(text: str) -> int:
    value = count(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"a port is at most 65535, got {value}")
    return value


def folder(text: str) -> Path:
    """A folder that exists (a data folder a command reads), refused by argparse otherwise."""
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {'not a folder' if path.exists() else 'no such folder'}")
    return path


def ui_command(port: int = 5000) -> list[str]:
    # one person's UI on this machine: one worker answers it (MLflow starts four by default, each
    # importing its server before the first page comes)
    return [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        tracking_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]


def cmd_synth(args) -> int:
    from .data.synthetic import write_synthetic_set

    root = write_synthetic_set(args.out, count=args.count, seed=args.seed, misalign=args.misalign)
    print(f"synthetic face set: {root}")
    return 0


def _on_real_data(job) -> bool:
    """A run on the researcher's data (a face folder, content or style folders), not the built-in
    synthetic faces or pictures: what the lab log records unasked."""
    return any(getattr(job.cfg, name, "") for name in ("data_root", "content_dir", "style_dir"))


def _record(outcomes, command: str, asked: bool = False) -> None:
    """The batch in today's lab log entry: when asked, or when it ran on real data (a smoke batch on
    the built-in data would leave a new file in git for nothing)."""
    from . import lablog

    if not (asked or any(_on_real_data(o.job) for o in outcomes)):
        print("lab log: not written (runs on the built-in data; --lablog writes it, `labkit log add` your own lines)")
        return
    entry = lablog.record_batch(outcomes, command)
    print(f"lab log: added to {entry.path}")


def _hidden_alias(s, old: str, dest: str, action: str = "store_true") -> None:
    """An option's earlier spelling, still taken, not shown."""
    s.add_argument(old, dest=dest, action=action, help=argparse.SUPPRESS)


def _notebooks_clean_in_git() -> None:
    """Before notebooks run: git's notebook filter and the save hooks, where no `make` set them up."""
    from .gitclean import ensure
    from .paths import project_root

    for done in ensure(project_root()):
        print(f"configured {done} (notebooks stay without outputs in git)")


def cmd_ablate(args) -> int:
    from .jobs import summary
    from .plan import parse_grid, plan, plan_search

    grid = parse_grid(args.grid or [])
    if args.range and not args.sample:
        raise ParamError("--range needs --sample N (how many points to try)")
    if grid and args.sample:
        raise ParamError("--grid and --sample are two kinds of sweep: use one")
    stem = "+".join(dict.fromkeys(Path(spec).stem for spec in args.params))
    overrides = (args.set or []) + ([f"nproc={args.nproc}"] if args.nproc else [])
    # every problem of the params refused first, before the executors' imports
    if args.sample:
        jobs, ranges = plan_search(args.params, args.range or [], args.seeds, overrides)
    else:
        jobs = plan(args.params, seeds=args.seeds, overrides=overrides, grid=grid)
    from . import store
    from .executors import EXECUTORS, Batch

    store.require(create=True)  # an empty or truncated store refused before MLflow loads
    EXECUTORS.get(args.executor)().check(Batch(address=args.address))  # before any sweep run is made

    from . import ablate, sweep, track

    _notebooks_clean_in_git()

    def run(jobs):
        return ablate.run_all(
            jobs,
            fresh=args.fresh,
            progress=not args.no_progress,
            workers=args.workers,
            executor=args.executor,
            address=args.address,
        )

    try:
        if args.sample:
            search = sweep.Search(args.params, jobs, ranges, args.sample, args.sampler, stem, args.seeds, overrides)
            parent = search.sweep
        else:
            parent = sweep.grid_sweep(jobs, grid, stem) if grid else None
    except LeaseHeld as exc:
        print(f"labkit: this sweep is being run already: lease {exc}", file=sys.stderr)
        return 1
    if parent is None:
        outcomes = run(jobs)
    else:
        print(f"sweep {parent.run.name} ({parent.run.run_id}): its runs nest under it\n  {parent.run.url()}")
        with parent:
            outcomes = search.run(run, args.workers) if args.sample else run(jobs)
            table = parent.finish(outcomes)
    print("\n" + summary(outcomes, track.headlines(o.run_id for o in outcomes)))
    if parent is not None:
        print("\n" + table)
    if not args.no_lablog:
        _record(outcomes, "labkit ablate " + shlex.join(args.argv), asked=args.lablog)
    return 1 if any(not o.status.done for o in outcomes) else 0


def _measured_last() -> str | None:
    """The experiment whose runs measured FID last, read from a SQLite store without MLflow."""
    from . import store

    path = store.store_path()
    return store.newest_measured_experiment(path) if path is not None and path.is_file() else None


def _experiment_to_compare(given: str | None) -> str:
    """The experiment named, else the one whose runs measured FID last (after `make demo`: demo),
    else the face lab's own."""
    if given:
        return given
    newest = _measured_last()
    if newest is None:
        return next(f.default for f in dataclasses.fields(SketchConfig) if f.name == "experiment")
    print(f"experiment '{newest}' (its runs measured FID last; --experiment NAME for another)", file=sys.stderr)
    return newest


def _existing_experiment(given: str | None) -> str:
    """The experiment to read (named, else the one that measured FID last), refused when missing
    before MLflow's and the plotting imports load."""
    from . import store

    experiment = _experiment_to_compare(given)
    store.require(experiment)
    from . import track

    track.existing_experiment(track.client(create=False), experiment)
    return experiment


def cmd_compare(args) -> int:
    args.experiment = _existing_experiment(args.experiment)
    from .compare import compare, for_terminal

    by = args.by or []
    result = compare(
        args.experiment, out_dir=args.out, log=not args.no_mlflow, by=by, sweep=args.sweep or "", mixed=args.mixed
    )
    print(for_terminal(result, args.experiment, by))
    return 0


def cmd_report(args) -> int:
    args.experiment = _existing_experiment(args.experiment)
    from .compare import collect
    from .report import report
    from .style import report as style

    runs = collect(args.experiment)
    if style.is_style(runs):  # the style lab's swap measures, not an FID table
        files = style.report(args.experiment, runs, out_dir=args.out)
    else:
        files = report(args.experiment, out_dir=args.out, mixed=args.mixed, runs=runs)
    print("\n".join(f"wrote {f}" for f in files if f.suffix in (".md", ".html", ".tex")))
    return 0


def cmd_demo(args) -> int:
    from . import demo

    jobs = demo.plan_all(args.set or [])  # refused before the heavy imports
    from .compare import compare, for_terminal
    from .config import all_ablations
    from .console import banner
    from .jobs import summary
    from .weights import FID_INCEPTION_URL, cached

    weights = cached(FID_INCEPTION_URL)
    print(
        f"labkit demo: every notebook at demo size (the face ablations on the synthetic face set, and the "
        f"style-swap lab), {demo.WORKERS} at a time\n  runs in {runs_dir()}\n"
    )
    if not weights.is_file():
        print(
            banner(
                f"The FID Inception weights are not at {weights}.",
                "The demo tries to download them; "
                "without a network it falls back to a random-init Inception:\nits FIDs are smoke numbers, NOT "
                "comparable with real FID.",
            )
            + "\n"
        )
    _notebooks_clean_in_git()
    outcomes, phases = demo.run(jobs, args.set or [], progress=not args.no_progress)
    from . import track

    print("\n" + summary(outcomes, track.headlines(o.run_id for o in outcomes)) + "\n")
    not_run = sorted(set(all_ablations()) - {o.job.cfg.ablation for o in outcomes})
    if not_run:
        print(f"not run (the decoder they need did not finish): {', '.join(not_run)}\n")
    print(for_terminal(compare(demo.FACES), demo.FACES))
    phases.end("table")
    _record(outcomes, "labkit demo")
    phases.end("lab log")
    print(
        f"{phases.report()}.\nNext: the table again with `.venv/bin/labkit compare`; the runs in MLflow with "
        "`.venv/bin/labkit ui` (it prints their link); a first ablation of your own: docs/tutorials/first-ablation.md"
    )
    return 1 if any(not o.status.done for o in outcomes) or not_run else 0


def cmd_params(args) -> int:
    from .reference import parameters_text

    print(parameters_text(args.ablation))
    return 0


def cmd_landmarks(args) -> int:
    from . import landmarks

    detections = landmarks.run(
        args.data_root, device=args.device, batch_size=args.batch_size, progress=not args.no_progress
    )
    counts = {s: sum(d.source == s for d in detections) for s in ("mtcnn", "manual", "missing")}
    print(
        f"{len(detections)} photos: {counts['mtcnn']} detected by MTCNN, {counts['manual']} placed by hand, "
        f"{counts['missing']} missed\n  wrote {args.data_root / 'landmarks.csv'}\n"
        f"  check by eye: {args.data_root / 'landmarks_check.png'}"
    )
    if counts["missing"]:
        print(
            f"  missed (place their points by hand in {args.data_root / 'landmarks_missing.csv'}, then save it as "
            f"landmarks_manual.csv):\n    " + "\n    ".join(d.name for d in detections if d.source == "missing")
        )
    return 0


def cmd_align(args) -> int:
    from .align import align_sketches
    from .data.labels import read_label_map
    from .data.layout import find_pairs

    root = args.data_root
    aligned = align_sketches(
        root,
        find_pairs(root, skip_missing=True),
        read_label_map(root),
        args.mode,
        args.transform,
        args.smoothness,
        progress=not args.no_progress,
    )
    print(
        f"{len(aligned.scores)} sketches aligned ({args.mode}, {args.transform}, smoothness {args.smoothness:g} px); "
        f"region overlap of the parsing maps, before -> after:\n{aligned.report()}\n"
        f"  warped sketches and fields: {aligned.folder}\n  check by eye: {aligned.folder / 'check.png'}"
    )
    notes = [f"{r['name']}: {r['notes']}" for r in aligned.scores if r["notes"]]
    if notes:
        print("  notes:\n    " + "\n    ".join(notes))
    return 0


def cmd_log(args) -> int:
    from . import lablog

    if args.log_command == "new":
        entry, created = lablog.new(args.title, lablog.parse_date(args.date) if args.date else None)
        print(f"{'created' if created else 'opened'} {entry.path}")
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
        if editor and sys.stdin.isatty() and not args.no_edit:
            import shlex
            import subprocess

            subprocess.call([*shlex.split(editor), str(entry.path)])
            lablog.sync_notes(lablog.read_entry(entry.path))
    elif args.log_command == "add":
        entry = lablog.add(args.text, args.section, lablog.parse_date(args.date) if args.date else None)
        updated = lablog.sync_notes(entry)
        print(f"added to {entry.path}" + (f" (note of {len(updated)} run(s) updated)" if updated else ""))
    elif args.log_command == "show":
        since = lablog.parse_date(args.since) if args.since else None
        until = lablog.parse_date(args.until) if args.until else None
        resolver = lablog.Resolver()
        entries = lablog.select(since, until, args.ablation, args.oldest_first, resolver)
        print(lablog.to_text(entries, resolver))
        out = args.html or runs_dir() / "lablog.html"
        Path(out).write_text(lablog.to_html(entries, resolver, images=not args.no_images), encoding="utf-8")
        from .console import plural

        print(f"{plural(len(entries), 'entry', 'entries')}; HTML page: {out}")
    elif args.log_command == "import":
        dates = lablog.import_journal(args.file, start_year=args.start_year)
        from .console import plural

        print(
            f"imported {plural(len(dates), 'dated entry', 'dated entries')}, {dates[0]} to {dates[-1]}, into "
            f"{lablog.log_dir()}"
            if dates
            else f"nothing new: {args.file} was imported into {lablog.log_dir()} before"
        )
    return 0


def cmd_stylize(args) -> int:
    from .config import StyleConfig, parse_override
    from .style.variants import VARIANTS

    variant = VARIANTS.get(args.variant)
    overrides, problems = StyleConfig.coerce(dict(parse_override(t) for t in args.set or []), "--set")
    if problems:
        raise ParamError("\n".join(problems))
    cfg = StyleConfig.from_values(
        {
            "ablation": variant.ablation,
            "content_dir": args.content or "",
            "style_dir": args.style or "",
            "decoder_run": args.decoder_run or "",
            **({"decoder_kind": variant.decoder_kind} if variant.decoder_kind else {}),
            **overrides,
        },
        source="labkit stylize",
    )
    if not cfg.decoder_run:
        raise ParamError(
            "stylize needs a trained decoder: run `labkit ablate params/decoder_train.yaml`, then pass "
            "--decoder-run decoder_train-s0 (or another decoder_train run's name or id)"
        )
    problems = cfg.check_inputs()  # the folders and weights, before the networks' imports
    if problems:
        raise ParamError("\n".join(f"labkit stylize: {p}" for p in problems))
    from .style.stylize import stylize_folders

    written = stylize_folders(cfg, args.out, batch_size=args.batch_size, progress=not args.no_progress)
    print(f"{len(written)} images written to {args.out}")
    return 0


def cmd_runs(args) -> int:
    from . import store

    store.require(args.experiment)  # a SQLite store is read without MLflow (seconds to import)
    from . import runs

    if args.experiment and store.store_path() is None:  # a server: asked through MLflow
        from . import track

        track.existing_experiment(track.client(create=False), args.experiment)
    if args.end_dead:
        swept = runs.sweep([args.experiment] if args.experiment else None)
        print("\n".join(swept) if swept else "nothing to sweep: every RUNNING run has a live process driving it")
    rows = runs.states([args.experiment] if args.experiment else None, running_only=not args.all)
    print(runs.table(rows))
    return 0


def cmd_backup(args) -> int:
    from . import store

    dest = store.backup(args.dest)
    print(
        f"the store copied to {dest} ({dest.stat().st_size / 1e6:.1f} MB); to restore it, stop the lab and put it in "
        f"place of {store.store_path()}"
    )
    return 0


def _free_port(first: int) -> int:
    """The first port from `first` on that nothing listens on at 127.0.0.1."""
    import socket

    for candidate in range(first, min(first + 100, 65536)):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", candidate)) != 0:
                return candidate
    return first


def cmd_ui(args) -> int:
    import json

    from .paths import ui_address_file

    chosen = args.port or _free_port(5000)
    if not args.port and chosen != 5000:
        print(f"port 5000 is taken: serving on {chosen}", file=sys.stderr)
    command = ui_command(chosen)
    url = f"http://127.0.0.1:{chosen}"
    print(shlex.join(command))
    if args.print_only:
        return 0
    from . import track
    from .server import run_until_stopped

    # the links labkit writes from now on (run pages, the lab log, notebooks) point here
    address = ui_address_file()
    address.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    newest = _measured_last()  # its link opens the runs table with the FID columns (the view is set on first use)
    print(f"open {track.experiment_url(track.experiment_id(track.client(), newest)) if newest else url}")
    try:
        return run_until_stopped(command)
    finally:
        address.unlink(missing_ok=True)


def cmd_server(args) -> int:
    from .server import serve

    artifacts = args.artifacts or runs_dir() / "server-artifacts"
    return serve(
        args.store,
        artifacts,
        args.host,
        args.port,
        args.workers,
        args.admin_password_file,
        args.open,
        [name.strip() for name in args.allowed_hosts.split(",") if name.strip()],
    )


def variant_names() -> list[str]:
    from .style.variants import VARIANTS

    return VARIANTS.names()


def _add_ablate(sub) -> None:
    s = sub.add_parser("ablate", help="run params files' notebooks with papermill, one MLflow run each")
    s.add_argument("params", nargs="+", help="params/*.yaml files, or ablation names (a notebook at its defaults)")
    s.add_argument("--seeds", type=count, help="run each file with seeds seed, seed+1, ... (N of them)")
    s.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a parameter in every file")
    s.add_argument(
        "--grid",
        action="append",
        metavar="NAME=V1,V2,...",
        help="sweep a parameter over these values (repeat for a grid: every combination), the runs "
        "nested under one parent run",
    )
    s.add_argument("--sample", type=count, metavar="N", help="sweep N points drawn by Optuna from the --range's")
    s.add_argument(
        "--range",
        action="append",
        metavar="NAME=LOW:HIGH[:log]",
        help="where --sample draws a parameter from (log: evenly on a log scale)",
    )
    s.add_argument(
        "--sampler",
        choices=("tpe", "random"),
        default="tpe",
        help="Optuna's TPE (each point chosen from the FIDs so far) or plain random search",
    )
    s.add_argument("--fresh", action="store_true", help="start new runs even where these params ran before")
    s.add_argument("--no-lablog", action="store_true", help="do not add the batch to today's lab log entry (lablog/)")
    s.add_argument(
        "--lablog",
        action="store_true",
        help="add the batch to the lab log also when its runs are on the built-in data (smoke runs are not, unasked)",
    )
    _hidden_alias(s, "--no-log", "no_lablog")
    s.add_argument(
        "--workers",
        type=count,
        default=1,
        help="notebooks executed at a time (processes; one GPU each when there are GPUs)",
    )
    s.add_argument(
        "--nproc",
        type=count,
        metavar="N",
        help="each face run trained by N processes under torchrun (DDP; one GPU each, or gloo on the "
        "CPU), batch_size split among them: --set nproc=N",
    )
    s.add_argument(
        "--executor",
        default="local",
        help="an executor of labkit.executors: local, processes on this machine (--workers); ray, each "
        "job a task on a Ray cluster; a plugin may register more",
    )
    s.add_argument(
        "--address",
        default="",
        help="with --executor ray: the cluster's head, HOST:PORT (default: a "
        "Ray instance on this machine for the batch)",
    )
    _no_progress(s)
    s.set_defaults(func=cmd_ablate)


def _add_compare(sub) -> None:
    s = sub.add_parser("compare", help="print the FID table across an experiment's ablations")
    s.add_argument(
        "--experiment",
        help="the MLflow experiment whose runs make the table (default: the one whose runs measured FID last)",
    )
    s.add_argument("--out", type=Path, help="folder for the .md and .csv (default runs/compare/)")
    s.add_argument(
        "--no-mlflow", action="store_true", help="do not log the table to MLflow (experiment <experiment>-compare)"
    )
    _hidden_alias(s, "--no-log", "no_mlflow")
    s.add_argument(
        "--by",
        action="append",
        metavar="FACTOR",
        help="FID against this parameter: a table and a figure (repeat for several)",
    )
    s.add_argument("--sweep", metavar="NAME", help="only the runs of this sweep (its parent run's name or id)")
    s.add_argument(
        "--mixed",
        action="store_true",
        help="show runs measured differently (backbone, N, test faces) too, each measurement apart",
    )
    s.set_defaults(func=cmd_compare)


def _add_report(sub) -> None:
    s = sub.add_parser(
        "report",
        help="the term summary from an experiment's runs (the face lab's FID table, or the style lab's swap "
        "measures): Markdown with figures, one HTML page, LaTeX table",
    )
    s.add_argument(
        "--experiment",
        help="the MLflow experiment whose runs it summarises (default: the one whose runs measured FID last)",
    )
    s.add_argument(
        "--out", type=Path, help="folder for report.md, report.html and table.tex (default runs/report/<experiment>/)"
    )
    s.add_argument(
        "--mixed",
        action="store_true",
        help="summarise runs measured differently (backbone, N, test faces) too, each measurement apart",
    )
    s.set_defaults(func=cmd_report)


def _add_align(sub) -> None:
    s = sub.add_parser("align", help="warp every sketch onto its photo's geometry from the parsing maps (+align)")
    s.add_argument("data_root", type=folder, help="the data folder whose sketches are warped")
    knobs = {f.name: f for f in dataclasses.fields(SketchConfig)}
    s.add_argument(
        "--mode",
        default="dense",
        choices=knobs["align_mode"].metadata["choices"][1:],
        help="how the warp is estimated from the parsing maps (default: dense, the align notebooks')",
    )
    for option in ("transform", "smoothness"):
        knob = knobs[f"align_{option}"]
        s.add_argument(
            f"--{option}",
            default=knob.default,
            type=type(knob.default),
            choices=knob.metadata["choices"] or None,
            help=knob.metadata["help"],
        )
    _no_progress(s)
    s.set_defaults(func=cmd_align)


def _add_log(sub) -> None:
    s = sub.add_parser("log", help="the dated lab log: new, add, show, import")
    s.set_defaults(func=cmd_log)
    log = s.add_subparsers(dest="log_command", required=True)
    x = log.add_parser("new", help="create (or open) today's entry")
    x.add_argument("title", nargs="?", default="", help="the entry's title")
    x.add_argument("--date", help="YYYY-MM-DD instead of today")
    x.add_argument("--no-edit", action="store_true", help="do not open $EDITOR")
    x = log.add_parser("add", help="append a line to a section of today's entry")
    x.add_argument("text", help="the line; refer to runs as run:NAME or run:IDPREFIX")
    x.add_argument("--section", default="actions", help="problems | causes | actions | ideas")
    x.add_argument("--date", help="YYYY-MM-DD instead of today")
    x = log.add_parser("show", help="print the log with runs resolved, and write it as one HTML page")
    x.add_argument("--since", help="YYYY-MM-DD")
    x.add_argument("--until", help="YYYY-MM-DD")
    x.add_argument("--ablation", default="", help="only entries about this ablation")
    x.add_argument("--oldest-first", action="store_true", help="the oldest entry first (default: the newest)")
    x.add_argument("--html", type=Path, help="where to write the page (default runs/lablog.html)")
    x.add_argument("--no-images", action="store_true", help="do not embed the runs' last sample grids")
    x = log.add_parser("import", help="read a free-form journal (## 9/24 headings) into dated entries")
    x.add_argument("file", type=Path, help="the journal: a text or Markdown file")
    x.add_argument("--start-year", type=int, help="year of the first date (default: the latest not in the future)")


def _add_stylize(sub) -> None:
    s = sub.add_parser("stylize", help="every content image in the style of every style image (a swap variant)")
    s.add_argument("--content", help="folder of content images (default: scikit-image's photographs)")
    s.add_argument("--style", help="folder of style images (default: scikit-image's textures)")
    s.add_argument("--variant", default="argmax", choices=variant_names(), help="the swap variant")
    s.add_argument("--decoder-run", help="the decoder_train run (name or id) whose decoder to use")
    s.add_argument("--out", type=Path, default=Path("runs/stylized"), help="folder for the stylized images")
    s.add_argument("--batch-size", type=count, default=8, help="content images swapped at a time")
    s.add_argument("--set", action="append", metavar="NAME=VALUE", help="any style parameter, e.g. temperature=0.1")
    _no_progress(s)
    s.set_defaults(func=cmd_stylize)


def _add_store(sub) -> None:
    """The commands about the tracking store: the runs in it, a backup, a team's server, the UI."""
    s = sub.add_parser("runs", help="the runs with status, step, heartbeat and holder; --end-dead ends dead ones")
    s.add_argument("--experiment", help="only this experiment")
    s.add_argument("--all", action="store_true", help="every run, not only those marked RUNNING")
    s.add_argument("--end-dead", action="store_true", help="mark RUNNING runs that nothing drives any more KILLED")
    _hidden_alias(s, "--sweep", "end_dead")
    s.set_defaults(func=cmd_runs)

    s = sub.add_parser("backup", help="a consistent copy of the live SQLite store (runs may go on meanwhile)")
    s.add_argument("dest", nargs="?", type=Path, help="the copy's file (default runs/backups/mlflow-TIME.db)")
    s.set_defaults(func=cmd_backup)

    s = sub.add_parser("server", help="a team's tracking server: mlflow server on PostgreSQL, artifacts proxied")
    s.add_argument("store", help="the PostgreSQL database: postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE")
    s.add_argument(
        "--artifacts", type=Path, help="where the server keeps the artifacts (default: runs/server-artifacts)"
    )
    s.add_argument("--host", default="127.0.0.1", help="the interface to listen on (default: this machine only)")
    s.add_argument("--port", type=port, help="the port to listen on (default: 5000, or the next free one)")
    s.add_argument("--workers", type=count, default=4, help="server processes answering requests")
    s.add_argument(
        "--admin-password-file",
        type=Path,
        help="turns the login on: the first line is the password of the user 'admin' (or set "
        "MLFLOW_AUTH_ADMIN_PASSWORD); required on any --host but loopback",
    )
    s.add_argument("--open", action="store_true", help="off loopback, run without a login (a trusted network only)")
    s.add_argument(
        "--allowed-hosts",
        default="",
        metavar="NAME[,NAME]",
        help="the names clients reach the server by (mlflow.lab.example), besides loopback and private addresses; "
        "a request naming any other host is refused (against DNS rebinding)",
    )
    s.set_defaults(func=cmd_server)

    s = sub.add_parser("ui", help="start the MLflow UI on 127.0.0.1 for this lab's store")
    s.add_argument("--port", type=port, help="the port to listen on (default: 5000, or the next free one)")
    s.add_argument("--print-only", action="store_true", help="print the command that starts the UI, start nothing")
    s.set_defaults(func=cmd_ui)


def parser() -> argparse.ArgumentParser:
    from . import __version__

    p = _Parser(prog="labkit", description="Lab notebook for image-translation experiments.")
    p.add_argument("--version", action="version", version=f"labkit {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    _add_ablate(sub)
    _add_compare(sub)
    _add_report(sub)
    s = sub.add_parser("demo", help="the main job: every notebook at demo size (minutes on a CPU), the FID table")
    s.add_argument(
        "--set",
        action="append",
        metavar="NAME=VALUE",
        help="a parameter every notebook has (device, precision, fast, compile), e.g. precision=fp32",
    )
    _no_progress(s)
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("params", help="every parameter an ablation takes: its default there, type, bounds, help")
    s.add_argument("ablation", help="an ablation (a notebook's name: baseline, glad, swap_softmax, ...)")
    s.set_defaults(func=cmd_params)

    s = sub.add_parser("synth", help="write the synthetic face set")
    s.add_argument("out", type=Path, help="the folder to write the face set into")
    s.add_argument("--count", type=count, default=48, help="faces (photo and sketch pairs)")
    s.add_argument("--seed", type=int, default=0, help="the random seed the faces are drawn with")
    s.add_argument("--misalign", type=float, default=0.0, help="px of sketch-vs-photo misalignment")
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("landmarks", help="detect 5 facial landmarks on every photo of a data folder (MTCNN)")
    s.add_argument("data_root", type=folder, help="the data folder whose photos are read")
    s.add_argument("--device", default="auto", help="cpu, cuda or cuda:N; auto takes a GPU where there is one")
    s.add_argument("--batch-size", type=count, default=16, help="photos detected at a time")
    _no_progress(s)
    s.set_defaults(func=cmd_landmarks)

    _add_align(sub)
    _add_log(sub)
    _add_stylize(sub)

    _add_store(sub)

    return p


def _raised_from(exc: Exception, module: str, name: str) -> bool:
    """Whether exc is labkit's `module.name`: looked up where it was raised (its module is loaded
    then), so that a command does not import numpy or MLflow only to name its errors."""
    loaded = sys.modules.get(f"labkit.{module}")
    return loaded is not None and isinstance(exc, getattr(loaded, name))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    args.argv = argv[1:]
    from .registry import NotRegistered

    try:
        return args.func(args)
    except (ParamError, NotRegistered) as exc:
        print(f"labkit: refused, nothing was run:\n{exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("labkit: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if _raised_from(exc, "lablog.entries", "LabLogError"):
            print(f"labkit log: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, FileNotFoundError) or any(
            _raised_from(exc, module, name)
            for module, name in (("data.images", "DataError"), ("weights", "WeightsUnavailable"))
        ):
            print(f"labkit: {exc}", file=sys.stderr)
            return 2
        # a damaged store or a refused login: named with the fix, not a traceback
        from .store import damaged

        track = sys.modules.get("labkit.track")  # a refused login comes from MLflow, through track
        problem = (track.login_refused(exc) if track else None) or damaged()
        if problem is None:
            raise
        print(f"labkit: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
