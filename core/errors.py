"""The base class of every "the input is wrong" error, so the command line
(:func:`core.command_line.run_main`) can turn any of them into one ``error:`` line without
importing the layers that raise them (media, training, streams, fusion)."""
from __future__ import annotations


class UserInputError(Exception):
    """A mistake in what the user gave (a file, a folder, a config value): the message names the
    file and the problem. Subclasses keep their usual base too (``ValueError``, ``OSError``...)."""
