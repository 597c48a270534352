"""`EvaluationProgress`: what the robustness evaluation is doing, while it runs (it can take many minutes).

The attacks run after a split's batch has gone through the model, so a test progress bar reads 100 % long before
the evaluation ends. The engine (`robustness/batch.py: evaluate_batch`) reports each attack it starts and finishes
on a batch (each level, in a cascade); this turns those events into

- a progress bar (tqdm, like training's: one unit per image and attack level, the attack running in its
  description, elapsed time and an estimate of the time left) when the run shows progress bars;
- otherwise a plain line at most every `interval` seconds (none in the first `interval`: a short evaluation, a
  test's, prints nothing), each saying the attack, the levels, the images done, the elapsed time and an estimate.

Besides the attacks, a split's evaluation may run `steps` done once an image: the sanity check (the first gradient
attack at a very low SNR) and randomized-smoothing certification, whose phases (`phase`) can each take minutes.

Only the process that reports (rank 0) makes one; the others evaluate silently.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from adv_smooth.attacks.base import Attack
from adv_smooth.attacks.threat import DISPLAY

PLAIN_INTERVAL_S = 60.0  # the shortest time between two plain lines (no progress bar)


def duration(seconds: float) -> str:
    """`1h02m`, `3m05s` or `12s`."""
    s = int(round(max(seconds, 0.0)))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def describe_levels(levels: Sequence[float | None]) -> str:
    """`33/20 dB`, or `fixed budget` for an attack without SNR levels."""
    snr = [lv for lv in levels if lv is not None]
    return "/".join(f"{lv:g}" for lv in snr) + " dB" if snr else "fixed budget"


def info_line(message: str) -> None:
    """`rank_zero_info(message)` on a line of its own: the progress bars on screen are cleared first and redrawn
    after, so the line is not glued onto a bar (Lightning's validation bar, say)."""
    from pytorch_lightning.utilities import rank_zero_info
    from tqdm import tqdm

    with tqdm.external_write_mode(file=sys.stdout):
        rank_zero_info(message)


class EvaluationProgress:
    """Progress of one split's evaluation: `start` and `finish` an attack on `n` images at some levels.

    Args:
        images: the images this process evaluates.
        attacks: label -> attack, with `levels`: label -> the levels it is evaluated at.
        stage: "test" or "val", named in the output.
        bar: a tqdm bar (True) or plain lines at most every `interval` seconds (False).
        steps: label -> display name of the other work done once an image ("sanity", "certification"), reported
            like an attack with no levels.
        write: where plain lines go (default: `info_line`); `file`: the bar's stream (default: stdout, as Lightning's).
        clock: seconds, monotonic (tests pass their own).
    """

    def __init__(
        self,
        images: int,
        attacks: Mapping[str, Attack],
        levels: Mapping[str, Sequence[float | None]],
        stage: str = "test",
        bar: bool = True,
        interval: float = PLAIN_INTERVAL_S,
        write: Callable[[str], Any] | None = None,
        file: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        position: int = 1,
        steps: Mapping[str, str] | None = None,
    ) -> None:
        self.images, self.stage, self.interval, self.clock = max(int(images), 0), stage, interval, clock
        self.levels = {name: list(levels[name]) for name in attacks}
        self.names = {name: f"{name} ({DISPLAY.get(a.norm, a.norm)})" for name, a in attacks.items()}
        self.steps = dict(steps or {})
        self.names.update(self.steps)
        self.total = self.images * (sum(len(lv) for lv in self.levels.values()) + len(self.steps))
        self.done = 0
        self.images_done = {name: 0 for name in self.names}  # images each attack has finished (all its levels)
        self.write = write or info_line
        self.started = clock()
        self.last_line = self.started
        self.current = ""  # what runs now, as the bar names it
        self.bar = None
        if bar and self.total:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=self.total,
                desc=f"Robustness ({stage})",
                unit="img·level",
                position=position,
                leave=True,
                dynamic_ncols=True,
                file=file or sys.stdout,
                smoothing=0,
            )

    def __call__(self, name: str, levels: Sequence[float | None], n: int, finished: bool) -> None:
        """`evaluate_batch`'s report: attack `name` starts (`finished` False) or has finished on `n` images at
        `levels`."""
        (self.finish if finished else self.start)(name, levels, n)

    def _what(self, name: str, levels: Sequence[float | None], at: str = " ") -> str:
        """`pgd_l2 (L2) 40/20 dB` (`at` before the levels), or a step's name (`certification ...`)."""
        label = self.names.get(name, name)
        return label if name in self.steps else f"{label}{at}{describe_levels(levels)}"

    def start(self, name: str, levels: Sequence[float | None], n: int) -> None:
        self.current = self._what(name, levels)
        if self.bar is not None:
            self.bar.set_description_str(f"Robustness ({self.stage}): {self.current}")

    def finish(self, name: str, levels: Sequence[float | None], n: int) -> None:
        units = n if name in self.steps else n * len(levels)
        self.done += units
        last = self.levels.get(name, [None])[-1:]
        if name in self.steps or list(levels) == [] or list(levels[-1:]) == last:  # these images are done
            self.images_done[name] = self.images_done.get(name, 0) + n
        if self.bar is not None:
            self.bar.update(units)
            return
        self._plain(self.line(name, levels))

    def phase(self, text: str) -> None:
        """A phase of the step under way has finished (certification: the votes, the bound, each level's attack):
        the bar's description names the next; a plain line comes as for an attack, at most every `interval`."""
        if self.bar is not None:
            self.bar.set_description_str(f"Robustness ({self.stage}): {self.current}: {text}")
            return
        now = self.clock()
        elapsed = now - self.started
        self._plain(f"robustness ({self.stage}): {self.current}: {text} done, {duration(elapsed)} elapsed", now)

    def _plain(self, text: str, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        if now - self.last_line >= self.interval:
            self.last_line = now
            self.write(text)

    def line(self, name: str, levels: Sequence[float | None], now: float | None = None) -> str:
        """One plain progress line: the attack just finished, its images, the elapsed time and an estimate."""
        elapsed = (self.clock() if now is None else now) - self.started
        share = self.done / self.total if self.total else 1.0
        left = elapsed * (1 - share) / share if share > 0 else float("nan")
        estimate = f"about {duration(left)} left" if left == left else "no estimate yet"
        return (
            f"robustness ({self.stage}): {self._what(name, levels, ' at ')}, "
            f"{self.images_done.get(name, 0)}/{self.images} images; {100 * share:.0f} % of the evaluation done, "
            f"{duration(elapsed)} elapsed, {estimate}"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
