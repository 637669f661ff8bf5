"""Pure domain: models, the scheduling rule, retry backoff, errors. No I/O, no asyncio."""
