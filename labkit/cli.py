"""The `labkit` command."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .config import ParamError, parse_override
from .paths import project_root, runs_dir, tracking_uri

# The main job's small size: every ablation in minutes on a CPU, on the synthetic face set.
DEMO_EXPERIMENT = "demo"
DEMO_OVERRIDES = ["experiment=demo", "data_root=", "synthetic_count=48", "image_size=64", "ngf=32", "ndf=32",
                  "batch_size=4", "n_epochs=10", "n_epochs_decay=10", "eval_every=5", "log_every=5",
                  "fid_backbone=auto", "device=auto"]
DEMO_PARAMS = ["params/baseline.yaml", "params/glad.yaml", "params/local.yaml", "params/local_glad.yaml"]
# The style lab at small size: two decoders, then every swap variant using them.
DEMO_STYLE_OVERRIDES = ["experiment=demo-style", "image_size=64", "vgg_weights=auto", "steps=400", "lr=5e-4",
                        "batch_size=4", "log_every=20", "checkpoint_every=100", "device=auto"]
DEMO_STYLE_PARAMS = ["params/decoder_train.yaml", "params/decoder_train_inject.yaml"] + [
    f"params/swap_{v}.yaml" for v in ("argmax", "softmax", "frequency", "assignment", "channel_weighted", "gram",
                                      "multiscale", "multilayer")]


def ui_command() -> str:
    return f"mlflow ui --backend-store-uri {tracking_uri()} --host 127.0.0.1 --port 5000"


def cmd_synth(args) -> int:
    from .data.synthetic import write_synthetic_set
    root = write_synthetic_set(args.out, count=args.count, seed=args.seed, misalign=args.misalign)
    print(f"synthetic face set: {root}")
    return 0


def _record(outcomes, command: str) -> None:
    from . import lablog
    entry = lablog.record_batch(outcomes, command)
    print(f"lab log: added to {entry.path}")


def cmd_ablate(args) -> int:
    from . import ablate
    jobs = ablate.plan(args.params, seeds=args.seeds, overrides=args.set or [])
    outcomes = ablate.run_all(jobs, fresh=args.fresh, progress=not args.no_progress, workers=args.workers)
    print("\n" + ablate.summary(outcomes))
    if not args.no_log:
        _record(outcomes, "labkit ablate " + " ".join(args.argv))
    return 1 if any(o.status == "FAILED" for o in outcomes) else 0


def cmd_compare(args) -> int:
    from .compare import compare
    text, _ = compare(args.experiment, out_dir=args.out, log=not args.no_log)
    print(text)
    return 0


def cmd_demo(args) -> int:
    from . import ablate
    from .compare import compare
    started = time.time()
    root = project_root()
    print(f"labkit demo: the face ablations on the synthetic face set, then the style-swap lab, at small size\n"
          f"  runs in {runs_dir()}\n  face overrides: {' '.join(DEMO_OVERRIDES)}\n"
          f"  style overrides: {' '.join(DEMO_STYLE_OVERRIDES)}\n")
    jobs = ablate.plan([root / p for p in DEMO_PARAMS], overrides=DEMO_OVERRIDES) + ablate.plan(
        [root / p for p in DEMO_STYLE_PARAMS], overrides=DEMO_STYLE_OVERRIDES)
    from .metrics.backbone import weights_path
    if not weights_path().is_file():
        print("!" * 78 + f"\n!! The FID Inception weights are not at {weights_path()}.\n!! The demo tries to "
              "download them; without a network it falls back to a random-init Inception:\n!! its FIDs are smoke "
              "numbers, NOT comparable with real FID.\n" + "!" * 78 + "\n")
    # one notebook at a time: on a small CPU parallel kernels only fight over the cores
    outcomes = ablate.run_all(jobs, progress=not args.no_progress)
    print("\n" + ablate.summary(outcomes) + "\n")
    _record(outcomes, "labkit demo")
    text, _ = compare(DEMO_EXPERIMENT)
    print(text)
    print(f"demo finished in {time.time() - started:.0f}s. Open the runs in MLflow:\n  {ui_command()}\n"
          f"  then http://127.0.0.1:5000")
    return 1 if any(o.status == "FAILED" for o in outcomes) else 0


def cmd_landmarks(args) -> int:
    from . import landmarks
    detections = landmarks.run(args.data_root, device=args.device, batch_size=args.batch_size,
                               progress=not args.no_progress)
    counts = {s: sum(d.source == s for d in detections) for s in ("mtcnn", "manual", "missing")}
    print(f"{len(detections)} photos: {counts['mtcnn']} detected by MTCNN, {counts['manual']} placed by hand, "
          f"{counts['missing']} missed\n  wrote {args.data_root / 'landmarks.csv'}\n"
          f"  check by eye: {args.data_root / 'landmarks_check.png'}")
    if counts["missing"]:
        print(f"  missed (place their points by hand in {args.data_root / 'landmarks_missing.csv'}, then save it as "
              f"landmarks_manual.csv):\n    " + "\n    ".join(d.name for d in detections if d.source == "missing"))
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
        resolver = lablog.Resolver()
        entries = lablog.select(lablog.parse_date(args.since) if args.since else None,
                                lablog.parse_date(args.until) if args.until else None, args.ablation,
                                args.oldest_first, resolver)
        print(lablog.to_text(entries, resolver))
        out = args.html or runs_dir() / "lablog.html"
        Path(out).write_text(lablog.to_html(entries, resolver, images=not args.no_images), encoding="utf-8")
        print(f"{len(entries)} entries; HTML page: {out}")
    elif args.log_command == "import":
        dates = lablog.import_journal(args.file, start_year=args.start_year)
        print(f"imported {len(dates)} dated entries, {dates[0]} to {dates[-1]}, into {lablog.log_dir()}")
    return 0


def cmd_stylize(args) -> int:
    from .config import StyleConfig, from_dict, normalize_params
    from .style.stylize import stylize_folders
    overrides, problems = normalize_params(dict(parse_override(t) for t in args.set or []), "--set", StyleConfig)
    if problems:
        raise ParamError("\n".join(problems))
    cfg = from_dict({"ablation": f"swap_{args.variant}", "variant": args.variant, "content_dir": args.content or "",
                     "style_dir": args.style or "", "decoder_run": args.decoder_run or "", **overrides},
                    source="labkit stylize", schema=StyleConfig)
    if not cfg.decoder_run:
        raise ParamError("stylize needs a trained decoder: run `labkit ablate params/decoder_train.yaml`, then pass "
                         "--decoder-run decoder_train (or another decoder_train run's name or id)")
    written = stylize_folders(cfg, args.out, batch_size=args.batch_size, progress=not args.no_progress)
    print(f"{len(written)} images written to {args.out}")
    return 0


def cmd_ui(args) -> int:
    import subprocess
    command = ui_command()
    print(command)
    if args.print_only:
        return 0
    return subprocess.call(command.split())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="labkit", description="Lab notebook for image-translation experiments.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("ablate", help="run params files' notebooks with papermill, one MLflow run each")
    s.add_argument("params", nargs="+", help="params/*.yaml files")
    s.add_argument("--seeds", type=int, help="run each file with seeds seed, seed+1, ... (N of them)")
    s.add_argument("--set", action="append", metavar="NAME=VALUE", help="override a parameter in every file")
    s.add_argument("--fresh", action="store_true", help="start new runs even where these params ran before")
    s.add_argument("--no-log", action="store_true", help="do not add the batch to today's lab log entry")
    s.add_argument("--workers", type=int, default=1,
                   help="notebooks executed at a time (processes; one GPU each when there are GPUs)")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_ablate)

    s = sub.add_parser("compare", help="print the FID table across an experiment's ablations")
    s.add_argument("--experiment", default="faces")
    s.add_argument("--out", type=Path, help="folder for the .md and .csv (default runs/compare/)")
    s.add_argument("--no-log", action="store_true", help="do not log the table to MLflow")
    s.set_defaults(func=cmd_compare)

    s = sub.add_parser("demo", help="the main job: synthetic faces, every ablation at small size, FID table")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_demo)

    s = sub.add_parser("synth", help="write the synthetic face set")
    s.add_argument("out", type=Path)
    s.add_argument("--count", type=int, default=48)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--misalign", type=float, default=0.0, help="px of sketch-vs-photo misalignment")
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("landmarks", help="detect 5 facial landmarks on every photo of a data folder (MTCNN)")
    s.add_argument("data_root", type=Path)
    s.add_argument("--device", default="auto")
    s.add_argument("--batch-size", type=int, default=16)
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_landmarks)

    s = sub.add_parser("log", help="the dated lab log: new, add, show, import")
    s.set_defaults(func=cmd_log)
    log = s.add_subparsers(dest="log_command", required=True)
    x = log.add_parser("new", help="create (or open) today's entry")
    x.add_argument("title", nargs="?", default="")
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
    x.add_argument("--oldest-first", action="store_true")
    x.add_argument("--html", type=Path, help="where to write the page (default runs/lablog.html)")
    x.add_argument("--no-images", action="store_true", help="do not embed the runs' last sample grids")
    x = log.add_parser("import", help="read a free-form journal (## 9/24 headings) into dated entries")
    x.add_argument("file", type=Path)
    x.add_argument("--start-year", type=int, help="year of the first date (default: the latest not in the future)")

    s = sub.add_parser("stylize", help="every content image in the style of every style image (a swap variant)")
    s.add_argument("--content", help="folder of content images (default: scikit-image's photographs)")
    s.add_argument("--style", help="folder of style images (default: scikit-image's textures)")
    s.add_argument("--variant", default="argmax", help="argmax | softmax | frequency | assignment | "
                   "channel_weighted | gram | multiscale | multilayer")
    s.add_argument("--decoder-run", help="the decoder_train run (name or id) whose decoder to use")
    s.add_argument("--out", type=Path, default=Path("runs/stylized"))
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument("--set", action="append", metavar="NAME=VALUE", help="any style parameter, e.g. temperature=0.1")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_stylize)

    s = sub.add_parser("ui", help="start the MLflow UI on 127.0.0.1 for this lab's store")
    s.add_argument("--print-only", action="store_true")
    s.set_defaults(func=cmd_ui)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    args.argv = argv[1:]
    from .data import DataError
    from .lablog import LabLogError
    from .weights import WeightsUnavailable
    try:
        return args.func(args)
    except ParamError as exc:
        print(f"labkit: refused, nothing was run:\n{exc}", file=sys.stderr)
        return 2
    except LabLogError as exc:
        print(f"labkit log: {exc}", file=sys.stderr)
        return 2
    except (DataError, WeightsUnavailable, FileNotFoundError) as exc:
        print(f"labkit: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
