"""Helpers shared by the training tests."""

from __future__ import annotations


def strip_times(history):
    """Metrics rows without their timing columns (``*time_s``), which differ between runs."""
    return [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in history]


class StopTraining(Exception):
    """Raised by :func:`stop_at`: a stand-in for a kill between two epochs."""


def stop_at(n: int):
    """An ``on_epoch`` callback that interrupts ``train()`` right after epoch ``n``'s checkpoint."""

    def on_epoch(epoch, metrics):
        if epoch == n:
            raise StopTraining

    return on_epoch
