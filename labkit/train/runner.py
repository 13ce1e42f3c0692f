"""What every training loop of the lab does around its steps, in one place: the face training and
the decoder training each call `Runner.step_done` after a step.

- Losses are summed on the device (a LossWindow) and read once per `log_every` steps, so the host
  does not wait for the device every step; several processes read the mean of their windows.
- At each read the losses are checked finite (the first bad step is named exactly), then by the
  loop's own check (`check`: weights, divergence); a failure raises with where and a hint.
- The mean losses are logged at that step, and the run's heartbeat beats (forced at log steps,
  throttled between; rank 0 alone with several processes).
- A checkpoint is written when the loop's cadence says so (`checkpoint_due`, `save`), after the
  losses since the last read are checked finite: a checkpoint never holds a diverged model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .checkpoint import Checkpoints
from .distributed import World
from .window import LossWindow


class Diverged(FloatingPointError):
    """Training went off the rails: non-finite losses, weights or statistics, or a runaway loss."""


class NonFiniteLoss(Diverged):
    pass


@dataclass
class Runner:
    run: object
    window: LossWindow
    log_every: int
    save: Callable[[int], None]  # a checkpoint at this step
    checkpoint_due: Callable[[int], bool]
    where: Callable[[int], str]  # 'at epoch 2, step 40' for a step
    checkpoints: Checkpoints  # a failure says where the last checkpoint is
    advice: str  # and what to change
    # the loop's own checks at a read: the means, and where it stands with the hint (for its message)
    check: Callable[[dict, str], None] = lambda means, where: None
    world: World = field(default_factory=World)
    step: int = 0  # the last step done

    @property
    def hint(self) -> str:
        return f"{self.checkpoints.describe()}; {self.advice}"

    def read(self) -> dict[str, float]:
        """The mean losses since the last log, checked; raises Diverged naming the step."""
        means = self._finite()
        self.check(means, f"{self.where(self.step)}. {self.hint}")
        return means

    def _finite(self) -> dict[str, float]:
        self.window.merge(self.world)
        means, bad_step = self.window.read()
        if bad_step:
            listed = ", ".join(f"{k}={v:.4g}" for k, v in means.items())
            raise NonFiniteLoss(f"non-finite loss ({listed}) {self.where(bad_step)}. {self.hint}")
        return means

    def step_done(self, losses: dict, step: int, log: bool = False) -> dict[str, float] | None:
        """After a step: its losses into the window; at a log step (or with log) read, check and
        log them (returned), else beat; then a checkpoint when one is due."""
        self.window.add(losses, step)
        self.step, means = step, None
        if log or step % self.log_every == 0:
            means = self.read()
            if self.world.leads:
                self.run.log_metrics(means, step=step)
                self.run.beat(step, force=True)
            self.window.clear()
        elif self.world.leads:
            self.run.beat(step)
        if self.checkpoint_due(step):
            if self.window.count:  # no checkpoint holds weights a non-finite step has touched
                self._finite()
            self.save(step)
        return means
