"""User-facing error types: one line that names the file and the fix.

Command-line tools catch `SpireEdgeError` at top level and print `error: <message>` instead of a
traceback, so a bad frame or a missing sidecar reads like advice, not like a crash.
"""


class SpireEdgeError(Exception):
    """Base of every error whose message is meant for the user as it is."""


class FrameError(SpireEdgeError, ValueError):
    """A frame that cannot be read or used (corrupt, empty, zero-size, NaN/Inf, wrong shape)."""


class SidecarError(SpireEdgeError):
    """A model whose metadata.json is missing, malformed or does not match the model."""


class BackendUnavailable(SpireEdgeError, ImportError):
    """A backend runtime that is not installed; the message names the pip extra."""


class ArgumentError(SpireEdgeError, ValueError):
    """An option value that cannot work; the message names the option and what it accepts
    (checked in edge.argcheck, and by edge.codecs.base.check_threshold for score thresholds)."""


class DatasetError(SpireEdgeError):
    """A dataset folder that is empty, of an unknown layout, or missing its lists."""
