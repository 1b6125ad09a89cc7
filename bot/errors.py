"""The one exception type meant for users: the CLI turns it into a clean message and exit 2."""


class SleuthError(Exception):
    """A problem the user can fix (bad config, unknown name, missing file); its text is the message."""
