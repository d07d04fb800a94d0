"""Errors a person sees, and the exit codes the CLI returns.

Every error that reaches a person is a `VoicelabError` whose message says what went wrong *and*
what to do about it. The CLI prints it on one line and exits with its `exit_code`.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1  # a VoicelabError: bad input, missing files, ...
EXIT_USAGE = 2  # argparse's own code for bad command-line usage
EXIT_PAUSED = 3  # training saved a checkpoint and stopped because a pause/stop was requested
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), after the checkpoint was written
EXIT_TERMINATED = 143  # SIGTERM (128 + SIGTERM), after the checkpoint was written


class VoicelabError(Exception):
    """An error with a message meant for a person (what happened + what to do)."""

    exit_code = EXIT_ERROR


class ConfigError(VoicelabError):
    """The configuration is invalid. `problems` lists every problem found, not just the first."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        msg = "invalid configuration: " + "; ".join(self.problems)
        super().__init__(msg)


class AudioError(VoicelabError):
    """An audio file could not be used (not audio, empty, silent, too long, ...)."""


class WorkspaceError(VoicelabError):
    """A voice name or a path inside the workspace is not acceptable."""
