"""skipline: a durable priority order queue."""

from skipline.registry import Handlers

__all__ = ["Handlers"]

__version__ = "0.1.0"
