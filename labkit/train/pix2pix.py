"""The pix2pix model: its two networks, optimisers, schedules and one training step."""
from __future__ import annotations

import torch

from ..losses import gan_loss, l1
from ..models import PatchDiscriminator, UnetGenerator, init_weights


class NonFiniteLoss(FloatingPointError):
    pass


def linear_decay(n_epochs: int, n_epochs_decay: int):
    """pix2pix's 'linear' policy: constant for n_epochs, then linearly towards 0."""
    return lambda epoch: 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)


class Pix2Pix:
    def __init__(self, cfg, device: torch.device):
        self.cfg, self.device = cfg, device
        self.G = init_weights(UnetGenerator(3, cfg.sketch_channels, cfg.image_size, cfg.ngf)).to(device)
        self.D = init_weights(PatchDiscriminator(3 + cfg.sketch_channels, cfg.ndf)).to(device)
        betas = (cfg.beta1, 0.999)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=betas)
        rule = linear_decay(cfg.n_epochs, cfg.n_epochs_decay)
        self.sched_G = torch.optim.lr_scheduler.LambdaLR(self.opt_G, rule)
        self.sched_D = torch.optim.lr_scheduler.LambdaLR(self.opt_D, rule)
        self.amp = bool(cfg.amp and device.type == "cuda")
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)

    def _autocast(self):
        return torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.amp)

    def generator_terms(self, photo, sketch, fake) -> dict[str, torch.Tensor]:
        """The generator's loss terms, weighted; their sum is what it minimises."""
        return {"G_GAN": gan_loss(self.D(torch.cat([photo, fake], 1)), True),
                "G_L1": self.cfg.lambda_l1 * l1(fake, sketch)}

    def train_step(self, batch: dict) -> dict[str, float]:
        photo = batch["photo"].to(self.device, non_blocking=True)
        sketch = batch["sketch"].to(self.device, non_blocking=True)
        self.G.train()
        self.D.train()
        with self._autocast():
            fake = self.G(photo)
        # D step: real pairs vs generated pairs, loss halved (slows D relative to G)
        self.opt_D.zero_grad(set_to_none=True)
        with self._autocast():
            d_fake = gan_loss(self.D(torch.cat([photo, fake.detach()], 1)), False)
            d_real = gan_loss(self.D(torch.cat([photo, sketch], 1)), True)
            loss_D = 0.5 * (d_fake + d_real)
        self.scaler.scale(loss_D).backward()
        self.scaler.step(self.opt_D)
        # G step with D frozen
        self.D.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        with self._autocast():
            terms = self.generator_terms(photo, sketch, fake)
            loss_G = sum(terms.values())
        self.scaler.scale(loss_G).backward()
        self.scaler.step(self.opt_G)
        self.scaler.update()
        self.D.requires_grad_(True)
        values = {"loss_G": loss_G, **{f"loss_{k}": v for k, v in terms.items()},
                  "loss_D": loss_D, "loss_D_real": d_real, "loss_D_fake": d_fake}
        values = {k: float(v.detach()) for k, v in values.items()}
        bad = [k for k, v in values.items() if not torch.isfinite(torch.tensor(v))]
        if bad:
            raise NonFiniteLoss(f"non-finite loss ({', '.join(f'{k}={values[k]}' for k in bad)})")
        return values

    def end_epoch(self) -> None:
        self.sched_G.step()
        self.sched_D.step()

    @property
    def lr(self) -> float:
        return self.opt_G.param_groups[0]["lr"]

    @torch.no_grad()
    def generate(self, photos: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
        """Sketches for photos (CPU tensor), in eval mode: deterministic, unlike pix2pix's test.py
        default of train-mode dropout."""
        self.G.eval()
        out = []
        for start in range(0, len(photos), batch_size):
            with self._autocast():
                out.append(self.G(photos[start:start + batch_size].to(self.device)).float().cpu())
        return torch.cat(out)

    def state_dict(self) -> dict:
        return {name: getattr(self, name).state_dict()
                for name in ("G", "D", "opt_G", "opt_D", "sched_G", "sched_D", "scaler")}

    def load_state_dict(self, state: dict) -> None:
        for name, value in state.items():
            getattr(self, name).load_state_dict(value)
