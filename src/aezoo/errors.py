"""The errors a user can fix: stages report them in one message, without a traceback."""


class AezooError(Exception):
    """Base of the errors that name what to fix (a key, a file, a setting)."""


class ConfigError(AezooError, ValueError):
    """``params.yaml`` is missing, unreadable or invalid; the message names every bad key."""


class DataError(AezooError, RuntimeError):
    """A data file is missing, corrupt or malformed; the message names the file."""


class TrainingError(AezooError, RuntimeError):
    """Training diverged (a NaN loss) or cannot start; nothing is written."""


class PipelineError(AezooError, RuntimeError):
    """DVC reports the committed results stale, or a DVC/git command failed; says what to run."""


class TrackingError(AezooError, RuntimeError):
    """The MLflow tracking store is unreachable or its runs are incomplete; names the URI."""
