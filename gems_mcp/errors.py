"""The one error tree of gems-mcp. Lower layers state facts; the server (or the CLI) adds advice.

Everything raised on purpose is a GemsError; no class here also derives from a built-in exception,
so a boundary that catches GemsError never swallows a library's ValueError by accident. Each
boundary maps the tree once: the server turns an error into an isError tool result whose sentence is
the fact plus advice chosen by its class (advice.advise); the CLI turns it into an exit code with
`exit_code` (the one table below).
"""

from __future__ import annotations

from pathlib import Path


class GemsError(Exception):
    """Root of every error gems-mcp raises on purpose; the message is one sentence of fact."""


class InvalidRequest(GemsError):
    """A request the caller can correct: an argument out of range, a mode that does not apply."""


class Unsupported(InvalidRequest):
    """The configured model cannot do what was asked (a negative prompt, inpainting, a layout)."""


class NotFound(GemsError):
    """An id that names nothing: a trajectory, an image, a skill or one of its files."""


class UnknownTrajectory(NotFound):
    """No trajectory has this id."""

    def __init__(self, trajectory_id: str) -> None:
        self.trajectory_id = trajectory_id
        super().__init__(f"there is no trajectory {trajectory_id!r}")


class TrajectoryFinished(InvalidRequest):
    """The trajectory takes no more rounds: done, out of budget, or without rounds."""

    def __init__(self, trajectory_id: str, reason: str) -> None:
        self.trajectory_id = trajectory_id
        super().__init__(f"trajectory {trajectory_id} {reason}")


class NotJudged(InvalidRequest):
    """The last round has no verdicts yet, so the next round cannot be planned from it."""

    def __init__(self, trajectory_id: str, round_index: int) -> None:
        self.trajectory_id = trajectory_id
        super().__init__(f"round {round_index} of trajectory {trajectory_id} has no verdicts yet")


class GenerationError(GemsError):
    """The backend could not run a request (the pipeline refused it, out of memory, load failed)."""


class JudgeError(GemsError):
    """The server judge could not load or answer; the round and its images are kept and critique can be retried."""


class GenerationCancelled(GemsError):
    """The caller asked to stop; denoising ended early."""


class StoreError(GemsError):
    """The memory store could not be read or written (busy, corrupt, too new, unwritable)."""


class MemoryStoreError(StoreError):
    """Base class of the memory store's errors."""


class MemoryCorrupted(MemoryStoreError):
    """The database file could not be parsed; it was moved aside, bytes intact."""

    def __init__(self, path: Path, backup: Path, reason: str) -> None:
        self.path = path
        self.backup = backup
        self.reason = reason
        super().__init__(
            f"The memory database {path} is corrupt ({reason}); it was moved aside, unchanged, "
            f"to {backup} and a new empty database starts on the next write. "
            f"Restore that backup by hand if it can be repaired."
        )


class MemorySchemaTooNew(MemoryStoreError):
    """The database was written by a newer gems-mcp."""

    def __init__(self, path: Path, version: int, understood: int) -> None:
        self.path = path
        self.version = version
        super().__init__(
            f"The memory database {path} has schema version {version}, but this gems-mcp "
            f"understands up to {understood}; upgrade gems-mcp to use it."
        )


class MemoryBusy(MemoryStoreError):
    """Another process held the database lock for too long."""


class InvalidSkill(GemsError):
    """A skill file that cannot be used; the message says what is wrong and what is allowed."""


class UnknownSkill(NotFound):
    """No skill has the requested id."""


class UnknownReference(NotFound):
    """The skill has no reference file of that name."""


class UnknownImage(NotFound):
    """An image id that is malformed or not in the store."""


class BindRefused(GemsError):
    """The HTTP server must not start as configured (a non-loopback bind without a token)."""


class AgentError(GemsError):
    """The reference agent met a refusal it cannot work around (bench and `gems-mcp run`)."""


# -- exit codes: the one table every CLI command uses ------------------------------------

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
"""0 it worked; 1 the job failed (a model, a file, a failed check); 2 bad usage (arguments or settings that
cannot work; argparse uses 2 as well)."""

_EXIT_CODES: tuple[tuple[type[GemsError], int], ...] = (
    (InvalidRequest, EXIT_USAGE),  # the caller can correct it: an argument, a mode the model lacks
    (NotFound, EXIT_USAGE),  # an id the caller gave names nothing
    (BindRefused, EXIT_USAGE),
    (GemsError, EXIT_FAILED),  # the job itself failed: a model, the store, a judge
)


def exit_code(exc: BaseException) -> int:
    """The process exit code for an error a command reports (anything not in the tree, an OSError say, failed the job)."""
    return next((code for cls, code in _EXIT_CODES if isinstance(exc, cls)), EXIT_FAILED)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (at most 300 characters), or its class name: one sentence's worth
    of a library error, for errors that quote it."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
