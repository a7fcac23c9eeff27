class NstError(Exception):
    """An error the user can act on: the CLI prints its message on one line and exits non-zero."""
