"""One rank of a run trained by several processes: what torchrun starts (labkit.train.distributed
launches it). Also the torchrun it is started by: `python -m labkit.train.worker torchrun ARGS`
is torch's own launcher, made to die with the kernel that started it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import traceback

from ..lease import die_with_parent


def _worker(run_id: str, config: str) -> None:
    # imported here: the launcher (torchrun) is this module too, and needs none of it
    import torch
    import torch.distributed as dist

    from .. import track
    from ..config import SketchConfig
    from ..data import DataError, load_faces
    from ..lease import dump_stacks_on_signal
    from .checkpoint import CheckpointError
    from .distributed import FAILED, World
    from .loop import fit
    from .runner import Diverged

    cfg = SketchConfig.from_values(json.loads(config), "the launcher's config")
    world = World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"]))
    device = world.device(cfg.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    # a collective waits as long as the watchdog lets a slow phase be silent (rank 0 measuring FID)
    dist.init_process_group(
        "nccl" if device.type == "cuda" else "gloo", timeout=dt.timedelta(minutes=cfg.stall_minutes_slow + 5)
    )
    try:
        run = track.Run(track.client(), run_id)  # every rank reads its checkpoints; rank 0 alone writes to it
        if world.leads:
            dump_stacks_on_signal(run_id)  # the watchdog asks the process that beats
        fit(cfg, load_faces(cfg, progress=False), run, progress=False, world=world)  # the launcher draws the bar
    except Exception as exc:
        # one line in one write, whole among the other ranks' output, for the launcher to find;
        # the traceback only where the error is not one a run reports in its own words
        os.write(1, f"{FAILED} {world.rank}: {type(exc).__name__}: {' '.join(str(exc).split())}\n".encode())
        if not isinstance(exc, (Diverged, CheckpointError, DataError)):
            traceback.print_exc()
        sys.exit(1)
    finally:
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    die_with_parent()  # torchrun with the kernel, each rank with torchrun
    if argv[0] == "torchrun":
        from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
        from torch.distributed.run import main as torchrun

        try:
            torchrun(argv[1:])
        except ChildFailedError:  # the ranks said why; torchrun's summary of it says no more
            sys.exit(1)
    else:
        _worker(*argv)


if __name__ == "__main__":
    main()
