"""The error a user can fix, and how one line of any error is reported."""


class ZooError(Exception):
    """A problem the user can fix; the message says what was wrong and what to do."""


def error_line(error, last=False, limit=300):
    """One line of an exception's message for a one-line report (the first, or the ``last``:
    converters put the cause at the end), at most ``limit`` characters; its type if empty."""
    lines = str(error).strip().splitlines() or [type(error).__name__]
    return (lines[-1] if last else lines[0])[:limit]
