"""Console lines a user cannot act on, filtered by their exact text so that every other message still shows.

Every run printed three: Lightning's `_pytree` calling torch's deprecated `LeafSpec` (a FutureWarning about
Lightning's own code), its tip to install `litlogger` (an advertisement), and "Trainer already configured with
model summary callbacks" (the project configures its `ModelSummary` on purpose: `callbacks.model_summary`).
Lightning's other information lines (GPU available, `limit_*_batches` used, ...) and all warnings stay.
"""

from __future__ import annotations

import logging
import warnings

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
