"""Losses summed on the device between two reads, with the first step whose losses were not
finite: a training loop reads them once per log step, in one transfer, instead of making the
host wait for the device every step."""

from __future__ import annotations

import torch


class LossWindow:
    def __init__(self, device: torch.device, sums: dict[str, torch.Tensor] | None = None, count: int = 0):
        self.sums = {k: v.to(device) for k, v in (sums or {}).items()}
        self.count = count
        self.bad_step = torch.zeros((), dtype=torch.long, device=device)  # 0: every step finite so far

    def add(self, losses: dict[str, torch.Tensor], step: int) -> None:
        """One step's detached losses; `step` is kept on the device if any of them is not finite."""
        values = {k: v.detach().float() for k, v in losses.items()}
        finite = torch.isfinite(torch.stack(list(values.values()))).all()
        self.bad_step = torch.where(finite | (self.bad_step > 0), self.bad_step, step)
        self.sums = {k: self.sums[k] + v if k in self.sums else v.clone() for k, v in values.items()}
        self.count += 1

    def read(self) -> tuple[dict[str, float], int]:
        """The mean of each loss over the window, and the first non-finite step (0: none)."""
        names = list(self.sums)
        read = torch.cat([torch.stack([self.sums[k] for k in names]), self.bad_step.view(1).float()]).cpu()
        return {k: float(v) / self.count for k, v in zip(names, read[:-1])}, int(read[-1])

    def merge(self, world) -> None:
        """Every process's window made the mean of all of theirs, with the first bad step of any
        (labkit.train.distributed.World; nothing to do for one process)."""
        if world.size == 1:
            return
        names = list(self.sums)
        if names:
            means = world.mean_(torch.stack([self.sums[k] for k in names]))
            self.sums = dict(zip(names, means.unbind()))
        world.first_nonzero_(self.bad_step)

    def clear(self) -> None:
        self.sums, self.count = {}, 0

    def state(self) -> dict:
        return {"sums": {k: v.cpu() for k, v in self.sums.items()}, "window": self.count}
