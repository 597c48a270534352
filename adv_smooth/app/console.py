"""Console lines a user cannot act on, filtered by their exact text so that every other message still shows.

Every run printed three: Lightning's `_pytree` calling torch's deprecated `LeafSpec` (a FutureWarning about
Lightning's own code), its tip to install `litlogger` (an advertisement), and "Trainer already configured with
model summary callbacks" (the project configures its `ModelSummary` on purpose: `callbacks.model_summary`).
Lightning's other information lines (GPU available, `limit_*_batches` used, ...) and all warnings stay.
"""

from __future__ import annotations

import logging
import warnings
import weakref

NOISE_WARNINGS = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)  # regexes matched at the message's start
NOISE_INFO = (
    "💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger]",
    "Trainer already configured with model summary callbacks",
)
# The loggers Lightning's `rank_zero_info` writes through (pytorch_lightning sets the first on import).
LIGHTNING_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero")


class DropNoise(logging.Filter):
    """Drops the records whose message starts with one of `NOISE_INFO`."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(NOISE_INFO)


def quiet_console() -> None:
    """Install the filters (idempotent); every entry point calls this before Lightning starts."""
    for pattern in NOISE_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern, category=FutureWarning)
    for name in LIGHTNING_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropNoise) for f in logger.filters):
            logger.addFilter(DropNoise())


class HeldInfo:
    """Lightning's information lines held back until `release()`: shown then, in order, or never when an error
    ends the run first (its one line must be all that is printed). The loggers hold only a weak reference to it,
    so once the run that held them is gone, lines pass again."""

    def __init__(self) -> None:
        self.records: list[logging.LogRecord] = []
        self._gate = _Gate(weakref.ref(self))
        for name in LIGHTNING_LOGGERS:
            logging.getLogger(name).addFilter(self._gate)

    def _detach(self) -> None:
        for name in LIGHTNING_LOGGERS:
            logging.getLogger(name).removeFilter(self._gate)

    def release(self) -> None:
        """Stop holding and show what was held, through the loggers it was written to."""
        self._detach()
        for record in self.records:
            logging.getLogger(record.name).handle(record)
        self.records = []

    def __del__(self) -> None:  # an error ended the run before `release`: the lines are dropped with the holder
        self._detach()


class _Gate(logging.Filter):
    """The filter on Lightning's loggers: keeps each record in its holder while the holder lives."""

    def __init__(self, holder: weakref.ReferenceType[HeldInfo]) -> None:
        super().__init__()
        self.holder = holder

    def filter(self, record: logging.LogRecord) -> bool:
        holder = self.holder()
        if holder is None:
            return True
        holder.records.append(record)
        return False


def hold_info() -> HeldInfo:
    """Hold Lightning's information lines ("GPU available: ...", "`Trainer(limit_val_batches=1)` was configured
    ...") from building the Trainer until training starts: the Trainer is built before the data, and an error in
    loading it or the checkpoint must print one line and nothing before it."""
    return HeldInfo()
