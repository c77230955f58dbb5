"""The one exception type for a user's mistake: the CLI prints its message on one line and exits 2."""


class RnnkitError(Exception):
    """Bad input or a bad request: what is wrong and what to do, in one sentence."""
