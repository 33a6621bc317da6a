"""The error type every command raises for bad input or configuration."""


class UserError(Exception):
    """Bad input or configuration: printed as one line, exit code 2, no traceback."""
