"""The one exception the stack raises."""


class StackError(RuntimeError):
    """A stack operation failed; the message names the component and where to look."""
