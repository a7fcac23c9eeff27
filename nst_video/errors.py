class NstError(Exception):
    """An error the user can act on: the CLI prints its message on one line and exits non-zero."""


def reason(e: BaseException) -> str:
    """A short description of a library error, for an NstError message: the OS's text where there is one."""
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


class UnsupportedInput(NstError):
    """The input is not of a kind this job reads (not an image, not a video): the web server answers 415."""


class InputTooLarge(NstError):
    """The input is too large to process safely (a decompression bomb): the web server answers 413."""
