"""Every exception medrecipe raises can cross from a worker process to the parent: the Pool pickles it there and
rebuilds it here from its args. One that could not be rebuilt (MappingError took two arguments and pickled one)
killed the Pool's result-handler thread, and the data stage then waited forever at 100 % CPU (the review's)."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil

import pytest

import medrecipe
from medrecipe.blocks.base import StepFailed
from medrecipe.blocks.data_files import BadSourceFile
from medrecipe.blocks.record import AnswerNotAnOption, EmptyText, InvalidText, MappingError, NotText, RowRejected, UnknownRole
from medrecipe.compile.openrlhf.parse import ArgumentError
from medrecipe.errors import NotRunnableHere, UserError
from medrecipe.recipe.derive import DerivationError
from medrecipe.recipe.errors import Position, Problem, RecipeError
from medrecipe.run.lost_workers import WorkerLost

EXAMPLES = [
    MappingError("source 'en': column 'question' not found; the rows have: q", "question"),
    UserError("no data at x", "supply it"),
    NotRunnableHere("no GPU here", "run on a GPU machine"),
    RecipeError([Problem(Position("r.yaml", 3, 5), "sft.learning_rate", "must be positive", "e.g. 1e-5")]),
    DerivationError("sft.batch", "does not divide", "change it"),
    StepFailed("judge (task 0): ServerError: refused"),
    BadSourceFile("a.jsonl:3: not JSON"),
    RowRejected("rejected"), AnswerNotAnOption("E"), NotText("a list"), EmptyText("empty"), InvalidText("surrogate"), UnknownRole("roles"),
    WorkerLost("ForkServerProcess-2 was killed by SIGKILL"),
    ArgumentError("unrecognized arguments: --x"),
]
# ParserBuilt carries an argparse parser out of a block of OpenRLHF's code, within one process: it is never pickled.
NEVER_PICKLED = {"ParserBuilt"}


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda error: type(error).__name__)
def test_an_error_is_rebuilt_whole_from_its_pickle(error):
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error) and vars(again) == vars(error)


def test_every_exception_medrecipe_defines_is_checked():
    defined = set()
    for module in pkgutil.walk_packages(medrecipe.__path__, "medrecipe."):
        try:
            loaded = importlib.import_module(module.name)
        except ModuleNotFoundError as missing:  # the modules that run inside a tool's environment
            assert missing.name in ("axolotl", "lighteval", "openrlhf"), missing
            continue
        defined |= {name for name, value in vars(loaded).items() if inspect.isclass(value)
                    and issubclass(value, BaseException) and value.__module__ == loaded.__name__}
    assert defined - NEVER_PICKLED == {type(error).__name__ for error in EXAMPLES}
