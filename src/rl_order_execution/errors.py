"""The user's mistakes, under one root: the CLI turns any `UserError` into its one-line message
and exit code 2, never a traceback. Imports nothing of the toolkit (the ground floor)."""

from __future__ import annotations


class UserError(ValueError):
    """A mistake of the user's (a setting, a flag, a file): the message is one line naming it."""


class SettingsError(UserError):
    """A setting, a config file or a flag that cannot be used as given."""


class DataError(UserError):
    """A data file that cannot be used as it is: one line naming the file, row and column."""


class CheckpointError(UserError):
    """A checkpoint that is missing, not a file, not ours, or damaged."""


class ResumeError(UserError):
    """A run folder that cannot be resumed, or a resume command that contradicts it."""
