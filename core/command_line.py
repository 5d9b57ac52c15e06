"""What every tool's command line shares, and the training tools' common parser.

Every tool (tools/*.py) ends with ``sys.exit(run_main(main))``: a user mistake (a missing or
unreadable file, a bad config key or ``--set`` override, a corrupt checkpoint, a folder that is
not a run, cache or dataset) prints ONE line ``error: <what> (<file>)`` on stderr and exits with
status 2; ``--debug`` (:func:`add_debug_argument`) prints the full traceback before that line.
Any other exception is a bug and keeps Python's traceback. Argparse usage errors exit 2 as usual.

The three training tools (tools/train_keyframe_scorer.py, tools/train_stream.py,
tools/train_fusion.py) share ``--config --<data> --out [--set] [--fresh] [--debug]``
(:func:`training_parser`), INFO logging, and one line naming the best checkpoint, printed once
under ``accelerate launch`` (:func:`run_training`).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import sys
import traceback
from typing import Any, Callable, Iterable, Iterator, Sequence

from core.config import ConfigError, load_config
from core.errors import UserInputError

EXIT_USER_ERROR = 2  # what argparse uses for usage errors, so a script can tell "fix your input" apart

# Raised by the OS for a path the user gave; other OSErrors (a full disk, an I/O error) are not the
# user's mistake and keep their traceback.
_PATH_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)


def user_error_types() -> tuple[type[BaseException], ...]:
    """The exception classes that mean "the input is wrong": every
    :class:`core.errors.UserInputError` (config, storage, media, dataset, checkpoint and weights
    errors; their messages name the file; a full disk's ``WriteError`` too, which is the machine's
    state, not a bug) and the OS's path errors. Tools add their own layer's (e.g.
    ``fusion.prediction.PipelineError``) through :func:`run_main`'s ``user_errors``."""
    return (UserInputError, *_PATH_ERRORS)


def add_debug_argument(parser: argparse.ArgumentParser) -> None:
    """``--debug``: show the full traceback of an error (read by :func:`run_main`)."""
    parser.add_argument("--debug", action="store_true",
                        help="on an error, print the full traceback, not only the one-line message")


def describe_error(error: BaseException) -> str:
    """The one-line message for ``error``: its text with line breaks folded; for an OS path
    error, ``<what> (<file>)``."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        files = [os.fsdecode(f) for f in (error.filename, error.filename2) if f is not None]
        return f"{error.strerror} ({' -> '.join(files)})"
    text = str(error) or type(error).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def run_main(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None, *,
             user_errors: Iterable[type[BaseException]] = ()) -> int:
    """``main(argv)``, with a user mistake turned into one ``error:`` line on stderr and status 2.

    ``argv``: the arguments (default ``sys.argv[1:]``); ``--debug`` among them (before a ``--``)
    prints the traceback too. ``user_errors``: more exception classes that count as user mistakes,
    beside :func:`user_error_types`. Returns ``main``'s status, or 2 after a user mistake; any other
    exception propagates unchanged."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in (args[:args.index("--")] if "--" in args else args)
    try:
        return main(args)
    except Exception as e:  # noqa: BLE001 - re-raised below unless it is a user mistake
        if not isinstance(e, user_error_types() + tuple(user_errors)):
            raise
        if debug:
            traceback.print_exc()
        print(f"error: {describe_error(e)}", file=sys.stderr, flush=True)
        return EXIT_USER_ERROR


@contextlib.contextmanager
def naming_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> Iterator[None]:
    """Add ``(in PATH [with --set ...])`` to a :class:`ConfigError` raised inside, when its
    message does not name the file already: a recipe's keys are checked where they are used,
    which sees the mapping but not the file it came from."""
    try:
        yield
    except ConfigError as e:
        if e.args and isinstance(e.args[0], str) and os.fspath(path) not in e.args[0]:
            where = os.fspath(path) + (f" with --set {' '.join(overrides)}" if overrides else "")
            e.args = (f"{e.args[0]} (in {where})", *e.args[1:])
        raise


def _number(text: str, kind: type, accepts: Callable[[float], bool], wanted: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
    if not (math.isfinite(value) and accepts(value)):
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}")
    return value


# argparse ``type=`` for the tools' numeric options: a value outside the range is a usage error
# (exit 2, naming the option) before any work, not a traceback or a run that fails later


def positive_int(text: str) -> int:
    """An integer >= 1 (a count of clips, a batch size, resamples)."""
    return _number(text, int, lambda v: v >= 1, "an integer >= 1")


def non_negative_int(text: str) -> int:
    """An integer >= 0."""
    return _number(text, int, lambda v: v >= 0, "an integer >= 0")


def positive_float(text: str) -> float:
    """A finite number > 0 (seconds, frames per second)."""
    return _number(text, float, lambda v: v > 0, "a number > 0")


def positive_float_or_all(text: str) -> float | None:
    """A finite number > 0, or ``all`` (``None``: no limit)."""
    if text.strip().lower() == "all":
        return None
    return _number(text, float, lambda v: v > 0, "a number > 0 or 'all'")


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    return _number(text, float, lambda v: v >= 0, "a number >= 0")


def fraction(text: str) -> float:
    """A number in [0, 1] (a share of clips, a noise level)."""
    return _number(text, float, lambda v: 0 <= v <= 1, "a number in [0, 1]")


def torch_device(text: str) -> str:
    """A torch device this machine has (``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
    import torch

    try:
        device = torch.device(text)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"not a torch device: {text!r} (cpu, cuda, cuda:N, mps)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: this machine has no CUDA device")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(f"{text!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: this machine has no MPS device")
    return text


def default_device() -> str:
    """``"cuda"`` when this machine has a CUDA device, else ``"cpu"``: where the tools run their
    networks unless ``--device`` says otherwise."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def add_device_argument(parser: argparse.ArgumentParser, *, what: str = "the networks") -> None:
    """``--device`` (:func:`torch_device`), default :func:`default_device`; ``what`` names what
    runs there, for the help text."""
    parser.add_argument("--device", type=torch_device, default=default_device(),
                        help=f"torch device for {what}: cpu, cuda, cuda:N or mps (default: cuda when this "
                             "machine has one, else cpu; here %(default)s)")


def add_calibration_argument(parser: argparse.ArgumentParser) -> None:
    """``--no-calibration`` (stored as ``args.calibrated``, default True): probabilities with each
    run's temperature (fitted on val, ``calibration.json`` beside its checkpoint) or the raw ones."""
    parser.add_argument("--no-calibration", dest="calibrated", action="store_false",
                        help="print the raw probabilities, not those scaled by each run's temperature "
                             "(fitted on val when the run was trained)")


def training_parser(description: str, *, data_flag: str, data_help: str,
                    config_help: str = "recipe (YAML)") -> argparse.ArgumentParser:
    """A parser with ``--config``, ``data_flag`` (stored as ``args.data``), ``--out``, ``--set``,
    ``--fresh`` and ``--debug``; ``description`` is the tool's docstring."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help=config_help)
    parser.add_argument(data_flag, dest="data", metavar=data_flag.lstrip("-").upper(), required=True, help=data_help)
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--fresh", action="store_true", help="delete the run directory's contents and start over")
    add_debug_argument(parser)
    return parser


def run_training(train: Callable[..., dict[str, Any]], args: argparse.Namespace) -> int:
    """``train(config, args.data, args.out, fresh=args.fresh)`` with the config loaded from
    ``args.config`` and ``args.set``; prints the best val accuracy and where it is. Returns 0."""
    from accelerate import PartialState

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with naming_config(args.config, args.set):
        metrics = train(load_config(args.config, args.set), args.data, args.out, fresh=args.fresh)
    if PartialState().is_main_process:  # under accelerate launch, say it once
        best = metrics["best_val_acc"]
        where = f"{args.out}/best" if best is not None else f"{args.out}/last (no validation set)"
        accuracy = "n/a" if best is None else f"{best:.3f}"
        print(f"best val accuracy {accuracy} at epoch {metrics['best_epoch']} -> {where}")
    return 0
