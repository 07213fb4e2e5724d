"""The user's line lives in tracegrad/where.py (the runtime names it too); re-exported here
for code written against this path."""

from ..where import user_frame, user_line, user_line_long, warn_user

__all__ = ["user_frame", "user_line", "user_line_long", "warn_user"]
