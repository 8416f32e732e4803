"""streamsvc: live attendance for resolution study sessions."""

__version__ = "0.1.0"
