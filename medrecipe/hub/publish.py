"""Pushing a release to the Hugging Face Hub with huggingface_hub's HfApi.

For each repository: create it (private unless the recipe says public; an existing repository keeps its
visibility), upload a folder of links to its exact contents with one `upload_folder` call that also removes
files an earlier publish left and the release no longer has, then tag the resulting commit
`recipe-<hash>`. A repository that already holds files medrecipe did not publish is refused, before anything is
pushed. Re-publishing unchanged content makes no commit: huggingface_hub drops every file whose
content the Hub already holds and never sends an empty commit. An interrupted publish finishes when rerun:
LFS and Xet storage keep what was already uploaded, so only what is missing travels again. (With hf_xet
installed, `upload_folder` also commits a large folder in several parts.)

The token is huggingface_hub's business: HF_TOKEN or `hf auth login`. medrecipe only asks whether there is
one; its value goes to no file, message or log.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from huggingface_hub import HfApi, get_token
from huggingface_hub.errors import (  # HTTPError: the HTTP client's base error
    HFValidationError, HfHubHTTPError, HTTPError, RepositoryNotFoundError)

from .. import __version__
from ..errors import UserError
from .release import Release
from .repos import RepoContent, human_size, write_folder

# What a failed upload can raise: HTTP errors (HfHubHTTPError is also an OSError), connection errors, and
# huggingface_hub's wrappers (RuntimeError for a failed LFS transfer, ValueError for rejected metadata).
UPLOAD_ERRORS = (HTTPError, OSError, RuntimeError, ValueError)

# The Hub takes one file of up to 50 GB (https://huggingface.co/docs/hub/storage-limits, "Per file: 50GB max";
# HfApi.upload_file's docstring and constants.MAX_HTTP_DOWNLOAD_SIZE, huggingface_hub 2.4.0), and transformers 5 saves
# shards of up to "50GB" (PreTrainedModel.save_pretrained's max_shard_size, transformers 5.16.1): a larger file would
# be hashed and uploaded for hours, then refused.
HUB_FILE_LIMIT = 50 * 1000**3


@dataclass
class Pushed:
    content: RepoContent
    private: bool  # the repository's visibility, which an existing repository keeps whatever the recipe asks
    commit: str  # the repository's head after the push
    committed: bool  # whether this push made a commit
    tag: str  # created | moved | unchanged | off
    warnings: list[str] = field(default_factory=list)


def connect() -> tuple[HfApi, str]:
    """An HfApi for the configured endpoint and the account its token belongs to."""
    if not get_token():
        raise UserError(
            "not logged in to the Hugging Face Hub",
            "export HF_TOKEN=... or run `hf auth login`; or write the repositories locally with --to-dir DIR",
        )
    api = HfApi()
    try:
        account = api.whoami()["name"]
    except HfHubHTTPError as exc:
        if _status(exc) in (401, 403):
            raise UserError(f"the Hub did not accept the token: {_reason(exc)}", "check HF_TOKEN or run `hf auth login`") from None
        raise UserError(f"the Hub at {api.endpoint} could not say whose the token is: {_reason(exc)}",
                        "try again later (the Hub's status: https://status.huggingface.co), or check HF_ENDPOINT") from None
    except UPLOAD_ERRORS as exc:
        raise UserError(f"could not reach the Hub at {api.endpoint}: {_reason(exc)}", "check the network and HF_ENDPOINT") from None
    return api, account


@dataclass
class Publication:
    pushed: list[Pushed]  # in the order of the plan
    # What stopped the push, at the repository after the last pushed; those after it were not attempted.
    failure: UserError | None = None


def push(api: HfApi, contents: list[RepoContent], release: Release, log: Callable[[str], None]) -> Publication:
    """Push every repository in turn, once none of them is found to hold files that are not medrecipe's. A failure
    stops the push, with a UserError that says what to do (rerunning resumes a push that broke off), returned beside
    what was pushed before it, which the summary shows."""
    refuse_files_over_the_limit(contents)
    for content in contents:
        try:
            _refuse_files_of_others(api, content)
        except UPLOAD_ERRORS as exc:
            raise UserError(f"could not read {content.artifact.repo_id} on the Hub: {_reason(exc)}",
                            _what_to_do(exc, content.artifact.repo_id)) from None
    pushed = []
    for index, content in enumerate(contents, start=1):
        artifact = content.artifact
        log(f"[{index}/{len(contents)}] {artifact.repo_id}: {len(content.files)} files, {human_size(content.size)}")
        try:
            pushed.append(_push_one(api, content, release))
        except UserError as error:
            return Publication(pushed, error)
        except UPLOAD_ERRORS as exc:
            failure = UserError(f"publishing {artifact.repo_id} failed: {_reason(exc)}", _what_to_do(exc, artifact.repo_id))
            return Publication(pushed, failure)
    return Publication(pushed)


def refuse_files_over_the_limit(contents: list[RepoContent]) -> None:
    """A file the Hub would refuse stops the push before anything is uploaded (and a dry run, which shows it)."""
    for content in contents:
        for file in content.files:
            if file.size > HUB_FILE_LIMIT:
                raise UserError(
                    f"{content.artifact.repo_id}: {file.path} is {human_size(file.size)}, over the Hub's limit of "
                    f"{human_size(HUB_FILE_LIMIT)} for one file",
                    "save the checkpoint in smaller shards (transformers: model.save_pretrained(folder, "
                    "max_shard_size=\"5GB\")), then publish",
                )


def _refuse_files_of_others(api: HfApi, content: RepoContent) -> None:
    """A complete push leaves the repository holding exactly the release's files, so it may only go where medrecipe
    published before (its cards carry the `medrecipe` tag) or where nothing is yet but the `.gitattributes` the Hub
    creates: a repository made by hand, or by someone else in an organisation, is left as it is (as --to-dir leaves
    a folder it did not write). A repository the token cannot see is for create_repo to refuse."""
    if not content.complete:
        return  # an update of the scores replaces the card alone, on weights _refuse_other_weights checks
    artifact = content.artifact
    try:
        info = api.repo_info(artifact.repo_id, repo_type=artifact.repo_type)
    except RepositoryNotFoundError:
        return
    theirs = sorted(sibling.rfilename for sibling in info.siblings or [] if sibling.rfilename != ".gitattributes")
    tags = (info.card_data.get("tags") if info.card_data is not None else None) or []
    if theirs and "medrecipe" not in ([tags] if isinstance(tags, str) else tags):
        listed = ", ".join(theirs[:5]) + (f" and {len(theirs) - 5} more" if len(theirs) > 5 else "")
        raise UserError(
            f"{artifact.repo_id} exists and holds files medrecipe did not publish ({listed}): publishing would replace "
            "its card and delete them, so nothing was published",
            f"publish under another namespace with --namespace NS, or delete {artifact.repo_id} (or its files) on the Hub",
        )


def _what_to_do(exc: BaseException, repo_id: str) -> str:
    """Rerunning finishes a push that broke off (a server error, too many requests, the network, a transfer); a
    request the Hub refused would be refused again."""
    status = _status(exc)
    if status == 401:
        return "the Hub no longer accepts the token: check HF_TOKEN or run `hf auth login`, then rerun"
    if status == 403:
        return (f"the token may not write to {repo_id}: use a token with write access to {repo_id.split('/')[0]}, "
                "or publish under another namespace with --namespace")
    if isinstance(exc, HFValidationError) or (status is not None and 400 <= status < 500 and status != 429):
        return "the Hub refused the request, and would refuse it again: change what the message names, then rerun"
    return "rerun the same command to finish: what already reached the Hub is not uploaded again"


def _status(exc: BaseException) -> int | None:
    """The HTTP status of the Hub's answer, where the error is one."""
    return exc.response.status_code if isinstance(exc, HfHubHTTPError) else None


def _push_one(api: HfApi, content: RepoContent, release: Release) -> Pushed:
    artifact = content.artifact
    repo = {"repo_id": artifact.repo_id, "repo_type": artifact.repo_type}
    if not content.complete and not api.repo_exists(**repo):
        raise UserError(
            f"{artifact.repo_id} does not exist yet, so there is no card to add the scores to",
            f"publish the model first: medrecipe publish RECIPE --stage {artifact.stage}",
        )
    if content.weights:
        _refuse_other_weights(api, content)
    api.create_repo(**repo, private=content.private, exist_ok=True)
    before = api.repo_info(**repo)
    warnings = []
    if before.private != content.private:
        visibility = "private" if before.private else "public"
        warnings.append(
            f"{artifact.repo_id} exists and is {visibility}, the recipe asks for "
            f"{'private' if content.private else 'public'}: medrecipe never changes an existing repository's visibility"
        )
    recipe = release.recipe
    with tempfile.TemporaryDirectory(prefix="medrecipe-publish-") as staging:
        folder = Path(staging) / artifact.name
        write_folder(content, folder, link=True)
        commit = api.upload_folder(
            **repo,
            folder_path=folder,
            commit_message=f"{recipe.name}: {artifact.kind} ({release.tag})",
            commit_description=f"Published by medrecipe {__version__} from recipe {recipe.name}, sha256 {release.recipe_sha256}.",
            delete_patterns="*" if content.complete else None,
        )
    tag = _tag(api, repo, release, commit.oid) if recipe.publish.tag_recipe_hash else "off"
    return Pushed(content, before.private, commit.oid, commit.oid != before.sha, tag, warnings)


def _refuse_other_weights(api: HfApi, content: RepoContent) -> None:
    """An update of a model's card describes a checkpoint: the repository must hold its weights, which are compared by
    content (an LFS file's sha256, a small file's git blob id, as the Hub records them). Otherwise the card, and the
    tag, would put this recipe's name and numbers on weights another run made."""
    artifact = content.artifact
    held = {info.path: info for info in api.get_paths_info(artifact.repo_id, [f.path for f in content.weights],
                                                           repo_type=artifact.repo_type)}
    for file in content.weights:
        info = held.get(file.path)
        same = info is not None and (info.lfs.sha256 == _digest(file.source, "sha256") if info.lfs is not None
                                     else info.blob_id == _digest(file.source, "git"))
        if not same:
            raise UserError(
                f"{artifact.repo_id} does not hold this recipe's {artifact.stage} checkpoint ({file.path} "
                f"{'differs from' if info is not None else 'is missing beside'} {file.source}): its card would describe other weights",
                f"publish the checkpoint with its card: medrecipe publish RECIPE --stage {artifact.stage}",
            )


def _digest(path: Path, kind: str) -> str:
    """A file's sha256, or its git blob id (sha1 of "blob <size>\\0" and the content)."""
    digest = hashlib.sha256() if kind == "sha256" else hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _tag(api: HfApi, repo: dict, release: Release, commit: str) -> str:
    """Point the recipe tag at `commit`; a tag left on an older commit by an earlier publish is moved."""
    tags = {tag.name: tag.target_commit for tag in api.list_repo_refs(**repo).tags}
    current = tags.get(release.tag)
    if current == commit:
        return "unchanged"
    if current is not None:
        api.delete_tag(**repo, tag=release.tag)
    message = f"medrecipe recipe {release.recipe.name}, sha256 {release.recipe_sha256}"
    api.create_tag(**repo, tag=release.tag, revision=commit, tag_message=message)
    return "moved" if current else "created"


def _reason(exc: BaseException) -> str:
    """The first line of an error and of what caused it (huggingface_hub wraps transfer errors)."""
    lines = []
    for error in (exc, exc.__cause__):
        text = str(error).strip().splitlines()[0] if error is not None and str(error).strip() else ""
        if text and text not in lines:
            lines.append(text)
    return ": ".join(lines) or type(exc).__name__
