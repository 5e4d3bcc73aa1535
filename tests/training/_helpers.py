"""Helpers shared by the training tests."""

from __future__ import annotations


class StopTraining(Exception):
    """Raised by :func:`stop_at`: a stand-in for a kill between two epochs."""


def stop_at(n: int):
    """An ``on_epoch`` callback that interrupts ``train()`` right after epoch ``n``'s checkpoint."""

    def on_epoch(epoch, metrics):
        if epoch == n:
            raise StopTraining

    return on_epoch
