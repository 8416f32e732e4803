"""The pure core: no asyncio, no I/O. Data and `now` in, decisions out."""
