"""skipline: a durable priority order queue."""

__version__ = "0.1.0"
