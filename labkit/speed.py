"""How a run computes fast, per device, with the reference path one parameter away.

`fast: true` (the default) takes what measured faster:
  mixed precision   bf16 autocast where the device computes bf16 natively (CUDA with bf16,
                    CPUs with AVX512-BF16 or AMX: 1.6x on a decoder step, 1.45x on a pix2pix
                    step on such a CPU); fp32 elsewhere. `precision` chooses by hand (fp16 on
                    CUDA comes with a gradient scaler).
  fused Adam        one kernel for all parameters (6.5x faster than plain Adam on 54 M
                    parameters on a CPU); the same update rule.
  CUDA only         channels_last memory format, cuDNN autotuning, and torch.compile of the
                    networks (`compile: auto`; a compile that fails falls back to eager with
                    one warning). On a CPU compiling costs more than a short run saves.
`fast: false` is the reference formulation: fp32, eager, plain Adam.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn


def cpu_flags() -> set[str]:
    """The instruction-set flags of this machine's CPU (empty where /proc/cpuinfo is not)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[1].split()}


def cpu_features() -> str:
    """What decides the CPU's fast path, for a benchmark's or a report's first line."""
    flags = cpu_flags()
    have = lambda flag: "yes" if flag in flags else "no"  # noqa: E731
    path = "bf16 native" if native_bf16(torch.device("cpu")) else "no native bf16: the fast path is fp32"
    return f"AVX2 {have('avx2')}, AVX512-BF16 {have('avx512_bf16')}, AMX-BF16 {have('amx_bf16')} ({path})"


def native_bf16(device: torch.device) -> bool:
    """Whether the device computes bf16 in hardware (else autocast to bf16 only emulates it)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


@dataclass(frozen=True)
class Speed:
    device: torch.device
    dtype: torch.dtype | None  # autocast's, or None for fp32
    compile: bool
    fast: bool

    @classmethod
    def of(cls, cfg, device: torch.device) -> Speed:
        precision = cfg.precision
        if precision == "auto":
            precision = "bf16" if cfg.fast and native_bf16(device) else "fp32"
        if precision == "fp16" and device.type != "cuda":
            raise ValueError("precision='fp16' needs CUDA; on a CPU use 'bf16' or 'fp32'")
        # auto compiles what has been shown to gain: one process's baseline networks on CUDA. Not
        # +local's 15 networks (each recompiled for training, eval and FID's batch: minutes before
        # a short run trains), nor DDP with SyncBatchNorm (never run compiled): `on` asks for them
        compile_ = cfg.compile == "on" or (
            cfg.compile == "auto"
            and cfg.fast
            and device.type == "cuda"
            and cfg.processes == 1
            and not getattr(cfg, "local", False)
        )
        dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
        return cls(device, dtype, compile_, cfg.fast)

    @property
    def channels_last(self) -> bool:
        return self.fast and self.device.type == "cuda"

    def describe(self) -> str:
        precision = {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}[self.dtype]
        parts = [precision, "fused Adam" if self.fast else "plain Adam", "compiled" if self.compile else "eager"]
        return ", ".join(parts + (["channels_last"] if self.channels_last else []))

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, enabled for fp16 only (bf16 has fp32's range)."""
        return torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)

    def adam(self, params, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
        return torch.optim.Adam(params, lr=lr, betas=betas, **({"fused": True} if self.fast else {"foreach": False}))

    def prepare(self, *nets: nn.Module) -> None:
        """Memory format and compilation of the networks, in place (their state_dict keys stay);
        cuDNN's autotuning on for the fast path on CUDA (a process-wide switch: set when the fast
        path's networks are made, not when a Speed is merely described)."""
        if self.device.type == "cuda" and self.fast:
            torch.backends.cudnn.benchmark = True
        for net in nets:
            if self.channels_last:
                net.to(memory_format=torch.channels_last)
            if self.compile:
                net.compile()

    def images(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


def compile_failure(exc: BaseException) -> bool:
    """Whether an error came from torch.compile's machinery (not from the model itself)."""
    import torch._dynamo.exc

    kinds = [torch._dynamo.exc.TorchDynamoException]
    try:
        import torch._inductor.exc

        kinds.append(torch._inductor.exc.InductorError)
    except (ImportError, AttributeError):
        pass
    return isinstance(exc, tuple(kinds))


def eager_after_failure(nets: list[nn.Module], exc: BaseException) -> None:
    """A compile that failed: say so once and run the networks eagerly from now on."""
    cause = getattr(exc, "inner_exception", None) or exc.__cause__ or exc  # the compiler's own error
    warnings.warn(
        f"torch.compile failed ({type(cause).__name__}: {str(cause).strip().splitlines()[0][:300]}); the "
        "networks run eagerly (set compile: off to skip the attempt)",
        stacklevel=3,
    )
    torch._dynamo.reset()
    for net in nets:
        for module in net.modules():
            if getattr(module, "_compiled_call_impl", None) is not None:
                module._compiled_call_impl = None  # undo nn.Module.compile()
