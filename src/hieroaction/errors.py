"""Errors a user can cause.

Every error that a bad path, a bad file or a bad setting can raise derives from
:class:`HieroActionError`. The command line prints its message as one sentence and exits
non-zero, without a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class HieroActionError(Exception):
    """A problem with the user's input, described in one sentence."""


class DataError(HieroActionError):
    """An annotation file, dataset folder or record that cannot be read as expected."""


class UnsafePickleError(DataError):
    """A pickle asked to build an object that the restricted unpickler does not admit."""


class VideoError(HieroActionError):
    """A video file or frame folder that cannot be decoded as asked."""


class ConfigError(HieroActionError):
    """A configuration file or override that does not match the expected fields or types."""
