"""The command line: one module per subcommand."""

import gc


def pause_collecting() -> None:
    """Starting a command (the imports, the recipe schema and its validation) makes some 200,000 objects that live as
    long as the command: the cyclic garbage collector would walk them again and again as they are made, to free
    nothing (10 ms of `validate`'s 170). It resumes once the recipe is loaded (`start_collecting`)."""
    gc.disable()


def start_collecting() -> None:
    """Where start-up paused it: collection resumes, leaving out what start-up made (frozen: it lives until the command
    ends anyway). Called once the recipe is loaded (cli.common.load), or as a command that takes no recipe starts."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def restore_collecting() -> None:
    """As the command ends, whatever start-up paused or froze is the collector's again: main() may run again in one
    process, as the tests run it."""
    gc.unfreeze()
    gc.enable()
