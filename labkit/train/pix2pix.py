"""The pix2pix model and its ablations: networks, optimisers, schedules and one training step.
The generator's objective is the sum of the loss terms its config turns on (labkit.terms):
GAN + lambda_l1 L1 for the baseline, + glad, + the local networks' terms, + the distance-transform
loss; with `local` the generator is APDrawingGAN's (global and six local networks, fused) and six
local discriminators join the global one."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..losses import gan_loss
from ..models import PatchDiscriminator, UnetGenerator, as_upstream_tests, init_weights, without_dropout
from ..models.local import LOCAL_PARTS, LocalDiscriminators, LocalGenerator, local_pairs
from ..speed import Speed, compile_failure, eager_after_failure
from ..terms import GeneratorStep, generator_loss, generator_terms
from .distributed import World, needs_sync_batchnorm, sync_batchnorm


def linear_decay(n_epochs: int, n_epochs_decay: int):
    """pix2pix's 'linear' policy: constant for n_epochs, then linearly towards 0."""
    return lambda epoch: 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)


class Pix2Pix:
    """The networks, their optimisers and schedules. With several processes (World) the networks
    train as DDP replicas (`train_*`), their BatchNorm synchronised where each process holds few
    faces; `G`, `D` and `D_parts` stay the plain networks (what is saved, evaluated, and what the
    generator's step reads the frozen discriminators through)."""

    def __init__(self, cfg, device: torch.device, world: World = World()):
        self.cfg, self.device = cfg, device
        self.speed = Speed.of(cfg, device)
        c = cfg.sketch_channels
        if cfg.local:
            self.G = LocalGenerator(3, c, cfg.image_size, cfg.ngf, cfg.fusion)
            self.D_parts = init_weights(LocalDiscriminators(3 + c, cfg.image_size, cfg.ndf)).to(device)
        else:
            self.G = UnetGenerator(3, c, cfg.image_size, cfg.ngf)
            self.D_parts = None
        self.G = init_weights(self.G).to(device)
        if not cfg.dropout:
            without_dropout(self.G)
        self.D = init_weights(PatchDiscriminator(3 + c, cfg.ndf)).to(device)
        if needs_sync_batchnorm(cfg) and world.size > 1:
            for net in self._networks():
                sync_batchnorm(net, device)
        betas = (cfg.beta1, 0.999)
        d_params = list(self.D.parameters()) + (list(self.D_parts.parameters()) if self.D_parts else [])
        self.opt_G = self.speed.adam(self.G.parameters(), cfg.lr, betas)
        self.opt_D = self.speed.adam(d_params, cfg.lr, betas)
        rule = linear_decay(cfg.n_epochs, cfg.n_epochs_decay)
        self.sched_G = torch.optim.lr_scheduler.LambdaLR(self.opt_G, rule)
        self.sched_D = torch.optim.lr_scheduler.LambdaLR(self.opt_D, rule)
        self.scaler = self.speed.scaler()
        # what is compiled: the networks of fixed shapes (the part crops vary in place, not in size)
        self.compiled = (
            (
                [self.G.global_net, *self.G.parts.values(), *self.G.regions.values()]
                + ([self.G.fusion] if self.G.fusion is not None else [])
                if cfg.local
                else [self.G]
            )
            + [self.D]
            + (list(self.D_parts.nets.values()) if self.D_parts else [])
        )
        self.speed.prepare(*self.compiled)
        self.train_G, self.train_D, self.train_D_parts = map(world.replicate, (self.G, self.D, self.D_parts))

    def _autocast(self):
        return self.speed.autocast()

    def _discriminators(self) -> list[nn.Module]:
        return [self.D] + ([self.D_parts] if self.D_parts is not None else [])

    def _networks(self) -> list[nn.Module]:
        return [self.G, *self._discriminators()]

    def forward(self, photo, landmarks=None, mask=None, G: nn.Module | None = None) -> dict:
        """{'fake': sketch} and, for +local, the global output, composite, parts and boxes."""
        G = G or self.G
        if self.cfg.local:
            return G(photo, landmarks, mask)
        return {"fake": G(photo)}

    def train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        """One D step then one G step; the losses, detached, still on the device (reading them
        would make the host wait for the device every step). A compile that fails in the first
        step falls back to eager networks, with one warning."""
        return self._eager_if_compile_fails(lambda: self._train_step(batch))

    def _eager_if_compile_fails(self, work):
        """work(), and once more with eager networks when the compiler failed (no C++ compiler,
        no Triton, ...): wherever the compiled networks first run (a training step, the step-0
        pictures, FID's generation at new shapes), with one warning."""
        if not self.speed.compile:
            return work()
        try:
            return work()
        except Exception as exc:
            if not compile_failure(exc):
                raise
            eager_after_failure(self.compiled, exc)
            self.speed = dataclasses.replace(self.speed, compile=False)
            return work()

    def _train_step(self, batch: dict) -> dict[str, torch.Tensor]:
        photo = self.speed.images(batch["photo"].to(self.device, non_blocking=True))
        sketch = self.speed.images(batch["sketch"].to(self.device, non_blocking=True))
        self.G.train()
        for d in self._discriminators():
            d.train()
        mask = batch["mask"].to(self.device) if self.cfg.local else None
        with self._autocast():
            out = self.forward(photo, batch.get("landmarks"), mask, G=self.train_G)
        fake = out["fake"]
        values = {}

        # D step: real pairs vs generated pairs, each loss halved (slows D relative to G)
        self.opt_D.zero_grad(set_to_none=True)
        with self._autocast():
            d_fake = gan_loss(self.train_D(torch.cat([photo, fake.detach()], 1)), False)
            d_real = gan_loss(self.train_D(torch.cat([photo, sketch], 1)), True)
            loss_D = 0.5 * (d_fake + d_real)
            values.update(loss_D_real=d_real, loss_D_fake=d_fake)
            if self.D_parts is not None:
                real_parts = local_pairs(photo, sketch, out)
                fake_parts = local_pairs(photo, fake.detach(), out)
                d_parts = sum(
                    0.5
                    * (
                        gan_loss(self.train_D_parts(p, fake_parts[p]), False)
                        + gan_loss(self.train_D_parts(p, real_parts[p]), True)
                    )
                    for p in LOCAL_PARTS
                )
                values["loss_D_parts"] = d_parts
                loss_D = loss_D + d_parts
        self.scaler.scale(loss_D).backward()
        self.scaler.step(self.opt_D)

        # G step with the discriminators frozen (read through the plain networks: their replicas
        # would wait for gradients that a frozen network never gets)
        for d in self._discriminators():
            d.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        with self._autocast():
            terms = self.generator_terms(photo, sketch, out)
            loss_G = generator_loss(self.cfg, terms)
        self.scaler.scale(loss_G).backward()
        self.scaler.step(self.opt_G)
        self.scaler.update()
        for d in self._discriminators():
            d.requires_grad_(True)

        values = {"loss_G": loss_G, **{f"loss_{k}": v for k, v in terms.items()}, "loss_D": loss_D, **values}
        return {k: v.detach().float() for k, v in values.items()}

    def generator_terms(self, photo, sketch, out: dict) -> dict[str, torch.Tensor]:
        """The generator's loss terms (labkit.terms), weighted; their sum is what it minimises."""
        return generator_terms(GeneratorStep(self.cfg, self, photo, sketch, out))

    def end_epoch(self) -> None:
        self.sched_G.step()
        self.sched_D.step()

    @property
    def lr(self) -> float:
        return self.opt_G.param_groups[0]["lr"]

    @torch.no_grad()
    def generate(
        self,
        photos: torch.Tensor,
        landmarks: torch.Tensor | None = None,
        masks: torch.Tensor | None = None,
        batch_size: int = 16,
        pieces: bool = False,
        on_device: bool = False,
    ):
        """Sketches for photos, as `inference` says: `train` as pix2pix's and APDrawingGAN's test.py
        (each face alone, batch statistics, dropout on; the dropout seeded by the run's seed, so the
        same weights give the same sketches), or `eval` (running statistics, no dropout, batch_size
        faces at a time). On the CPU unless on_device; with pieces, the dict of every output (for
        the views)."""
        if self.cfg.inference == "train":
            outs = self._eager_if_compile_fails(lambda: self._as_upstream_tests(photos, landmarks, masks))
        else:
            self.G.eval()
            outs = self._eager_if_compile_fails(lambda: self._generate_batches(photos, landmarks, masks, batch_size))
        if not pieces:
            fakes = torch.cat([o["fake"].float() for o in outs])
            return fakes if on_device else fakes.cpu()
        nested = ("parts", "regions", "areas", "weights")
        merged = {k: torch.cat([o[k].float().cpu() for o in outs]) for k in outs[0] if k not in (*nested, "boxes")}
        for k in nested:
            if k in outs[0]:
                merged[k] = {p: torch.cat([o[k][p].float().cpu() for o in outs]) for p in outs[0][k]}
        if "boxes" in outs[0]:
            merged["boxes"] = {p: sum((o["boxes"][p] for o in outs), []) for p in outs[0]["boxes"]}
        return merged

    def _as_upstream_tests(self, photos, landmarks, masks) -> list[dict]:
        """One face at a time in train-mode inference, dropout drawn from the run's seed (the
        training's random state left as it was)."""
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with as_upstream_tests(self.G), torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.cfg.seed)
            return self._generate_batches(photos, landmarks, masks, 1)

    def _generate_batches(self, photos, landmarks, masks, batch_size: int) -> list[dict]:
        outs = []
        for start in range(0, len(photos), batch_size):
            part = slice(start, start + batch_size)
            mask = masks[part].to(self.device) if masks is not None and self.cfg.local else None
            with self._autocast():
                out = self.forward(
                    self.speed.images(photos[part].to(self.device)),
                    None if landmarks is None else landmarks[part],
                    mask,
                )
            outs.append(out)
        return outs

    def tensors(self) -> list[torch.Tensor]:
        """Every weight and floating-point buffer (BatchNorm statistics) of the networks."""
        return [t for net in self._networks() for t in (*net.parameters(), *net.buffers()) if t.is_floating_point()]

    def state_dict(self) -> dict:
        names = ["G", "D", "opt_G", "opt_D", "sched_G", "sched_D", "scaler"] + (["D_parts"] if self.D_parts else [])
        return {name: getattr(self, name).state_dict() for name in names}

    def load_state_dict(self, state: dict) -> None:
        for name, value in state.items():
            if name == "scaler" and not value:  # saved by a run without fp16 (a disabled scaler): start at its default
                continue
            getattr(self, name).load_state_dict(value)
