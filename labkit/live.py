"""What a runner shows while its jobs run: a line per running job (epoch, step, time left, last
FID), read from the heartbeats its runs write (labkit.lease), so the same lines come whatever
runs a job: this process, a worker process, a Ray task on this machine.

On a terminal the lines are redrawn in place every second, below what the runner prints; in a
log (not a terminal) a job's line is printed when it reaches a new FID, or at most every
`LOG_SECONDS` when its epoch moves."""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass

from . import lease

LOG_SECONDS = 60.0
PHASES = {"start": "starting", "evaluate": "measuring FID", "views": "drawing its views"}


@dataclass
class _Seen:
    """What the lines know of one run: its first training beat (for the rate) and what was printed."""

    first: tuple[float, int] | None = None
    printed: tuple = (None, None)  # (FID, epoch) of the line last printed to a log
    printed_at: float = 0.0


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds // 60 % 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"


def line(beat: lease.Beat, seen: _Seen, now: float) -> str:
    """One job's line: `glad-s0  epoch 3/9  step 120/360  1m20s left  FID 41.23`."""
    p = beat.progress
    parts = [p.get("run", "?")]
    if p.get("epochs"):
        parts.append(f"epoch {p.get('epoch', 1)}/{p['epochs']}")
    if p.get("steps"):
        parts.append(f"step {beat.step}/{p['steps']}")
        if seen.first and beat.step > seen.first[1] and beat.time > seen.first[0]:
            rate = (beat.step - seen.first[1]) / (beat.time - seen.first[0])
            parts.append(f"{_duration(max(0.0, (p['steps'] - beat.step) / rate + beat.time - now))} left")
    if beat.phase in PHASES:
        parts.append(PHASES[beat.phase])
    if p.get("fid") is not None:
        parts.append(f"FID {p['fid']:.2f}")
    return "  ".join(parts)


class LiveLines:
    """The lines of a batch's running jobs (their run keys), drawn by a thread until stop()."""

    def __init__(self, run_keys: set[str], stream=None, interval: float = 1.0):
        self.keys, self.stream, self.interval = set(run_keys), stream or sys.stderr, interval
        self.since = time.time()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._seen: dict[str, _Seen] = {}
        self._ended: set[str] = set()
        self._drawn = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="labkit-live-lines")

    def start(self) -> LiveLines:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        with self._lock:
            self._clear()

    def add(self, run_keys) -> None:
        with self._lock:
            self.keys |= set(run_keys)

    def ended(self, run_id: str) -> None:
        with self._lock:
            self._ended.add(run_id)

    def echo(self, text: str) -> None:
        """Print above the lines (what the runner says), then draw them again."""
        with self._lock:
            self._clear()
            print(text, flush=True)
            self._draw()

    def beats(self) -> dict[str, lease.Beat]:
        """The batch's running runs' newest beats, by run id."""
        found = {}
        for path in lease.lease_dir().glob("*.beat"):
            run_id = path.name[: -len(".beat")]
            if run_id in self._ended:
                continue
            try:  # (beat files stay after their runs: an old one is not read, every second)
                if path.stat().st_mtime < self.since:
                    continue
                beat = lease.Beat(**json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                continue
            if beat.time >= self.since and beat.progress.get("key") in self.keys:
                found[run_id] = beat
        return found

    def _lines(self, now: float) -> list[tuple[_Seen, lease.Beat, str]]:
        out = []
        for run_id, beat in sorted(self.beats().items(), key=lambda item: item[1].progress.get("run", "")):
            seen = self._seen.setdefault(run_id, _Seen())
            if beat.phase == "train" and beat.step and seen.first is None:
                seen.first = (beat.time, beat.step)
            out.append((seen, beat, line(beat, seen, now)))
        return out

    def _clear(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\x1b[F\x1b[2K" * self._drawn)
            self.stream.flush()
        self._drawn = 0

    def _draw(self) -> None:
        now = time.time()
        lines = self._lines(now)
        for seen, beat, text in lines:
            state = (beat.progress.get("fid"), beat.progress.get("epoch"))
            # a log gets a line when it says something new: a new FID, or a new epoch after a while
            if self.tty or (
                state != seen.printed and (state[0] != seen.printed[0] or now - seen.printed_at >= LOG_SECONDS)
            ):
                self.stream.write(f"  {text}\n")
                seen.printed, seen.printed_at = state, now
        self._drawn = len(lines) if self.tty else 0
        self.stream.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                self._clear()
                self._draw()
