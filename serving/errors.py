"""The one error policy (issue 21): mistakes a user can fix are `UserError`s, raised where the input is
judged; everything else is a bug.

The command line and the Ray engine catch `UserError` only and print it as one line (exit 2);
any other exception shows its traceback, and MUDRAJ_DEBUG=1 shows it for user errors too. Each kind
also derives from the built-in exception it refines, so `except ValueError` elsewhere (pydantic
validators, callers that already expect it) keeps working.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix: the message says what was wrong and where."""


class InputError(UserError, ValueError):
    """Bad input: a file's content, a flag's value, a request."""


class ConfigError(UserError, ValueError):
    """A bad training setting or configuration file."""


class MissingError(UserError, FileNotFoundError):
    """A file or folder the user named, or must make first, is not there."""


class ExistsError(UserError, FileExistsError):
    """An output the command would overwrite already exists."""
