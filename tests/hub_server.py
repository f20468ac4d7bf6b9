"""A local stand-in for the Hugging Face Hub on 127.0.0.1, speaking the HTTP protocol huggingface_hub uploads with.

The real client (HfApi.create_repo, upload_folder, create_tag, hf_hub_download...) runs against it unchanged,
given HF_ENDPOINT before huggingface_hub is imported and HF_HUB_DISABLE_XET=1 (Xet storage is not spoken).
Repositories are git-like: commits with a parent and a full tree, `main`, tags. Regular files are stored by
their git blob sha1, LFS files by sha256, and preupload reports the stored oid of each path, which is how
the client knows what is unchanged. Binary, large (>= 10 MB) and .gitattributes-matched files go to LFS, as
on the Hub. Routes: whoami-v2, repos/create, validate-yaml, repo info (with the card's metadata as cardData,
and `gated`), auth-check, refs, tree, paths-info, preupload, NDJSON commit, tag create/delete, LFS batch + signed
PUT + verify, and HEAD/GET resolve with byte ranges (what `datasets` streaming and HfFileSystem read with).

`seed` creates a repository with files on several branches (refs/convert/parquet, say), public, private or gated;
a gated repository's files are served only to users it was granted to, as on the Hub.

Tests inspect the state directly (`files`, `commits`, `tags`, `is_private`), read the request log, and
make a request fail with `fail(...)` to interrupt an upload.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import hmac
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

LFS_THRESHOLD = 10 * 1024 * 1024
PREFIX = {"model": "", "dataset": "datasets/"}
TYPES = {"models": "model", "datasets": "dataset"}
GITATTRIBUTES = b"".join(f"{pattern} filter=lfs diff=lfs merge=lfs -text\n".encode() for pattern in ("*.bin", "*.safetensors", "*.parquet"))


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-LFS pointer file a repository holds in place of an LFS file's content."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass
class Entry:
    oid: str  # git blob sha1 of the content, or of the LFS pointer
    size: int
    lfs: str | None = None  # sha256 of an LFS file's content


@dataclass
class Commit:
    oid: str
    parent: str | None
    title: str
    tree: dict[str, Entry]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    gated: bool = False
    granted: set[str] = field(default_factory=set)  # users who accepted a gated repository's terms


@dataclass
class Failure:
    method: str
    pattern: str
    status: int
    message: str
    times: int


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, body: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.body = status, message, code, body


class LocalHub:
    """The server and its state. `with LocalHub(root, tokens) as hub:` serves on hub.endpoint until exit."""

    def __init__(self, root: Path, tokens: dict[str, str]):
        self.root = Path(root)
        (self.root / "objects").mkdir(parents=True, exist_ok=True)
        (self.root / "lfs").mkdir(exist_ok=True)
        self.tokens = dict(tokens)  # token -> user name
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request served
        self.failures: list[Failure] = []
        self.lock = threading.RLock()
        self.secret = secrets.token_bytes(16)
        self.server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------------------ lifecycle
    def __enter__(self) -> LocalHub:
        handler = type("Handler", (_Handler,), {"hub": self})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)  # loopback only, a free port
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    @property
    def endpoint(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def client_env(self, token: str, home: Path) -> dict[str, str]:
        """Environment for a huggingface_hub client process that talks to this server."""
        return {
            "HF_ENDPOINT": self.endpoint,
            "HF_TOKEN": token,
            "HF_HOME": str(home),  # its own cache, no stored login
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        }

    # ------------------------------------------------------------------------------ test controls
    def seed(self, repo_type: str, repo_id: str, branches: dict[str, dict[str, bytes]], private: bool = False,
             gated: bool = False) -> None:
        """Create `repo_id` holding these files on these branches ("main" first), as it stands on the Hub."""
        with self.lock:
            repo = Repo(repo_type, repo_id, private=private, gated=gated)
            for branch, files in branches.items():
                tree: dict[str, Entry] = {}
                for path, data in files.items():
                    if len(data) >= LFS_THRESHOLD or b"\0" in data:
                        sha = hashlib.sha256(data).hexdigest()
                        (self.root / "lfs" / sha).write_bytes(data)
                        tree[path] = Entry(git_blob_oid(lfs_pointer(sha, len(data))), len(data), lfs=sha)
                    else:
                        tree[path] = Entry(self.store_regular(data), len(data))
                self.commit(repo, None, f"{branch}: seeded", tree, branch)
            self.repos[(repo_type, repo_id)] = repo

    def fail(self, method: str, pattern: str, status: int = 403, message: str = "Request has expired", times: int = 1) -> None:
        """Answer the next `times` requests whose path matches `pattern` (a regex) with an error."""
        with self.lock:
            self.failures.append(Failure(method, pattern, status, message, times))

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        return self.repos[(repo_type, repo_id)]

    def files(self, repo_type: str, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repo(repo_type, repo_id)
        tree = repo.commits[self.resolve(repo, revision)].tree
        return {path: self.read(entry) for path, entry in tree.items()}

    def commits(self, repo_type: str, repo_id: str) -> list[Commit]:
        """The history of `main`, newest first."""
        repo = self.repo(repo_type, repo_id)
        history, oid = [], repo.branches["main"]
        while oid is not None:
            history.append(repo.commits[oid])
            oid = repo.commits[oid].parent
        return history

    def read(self, entry: Entry) -> bytes:
        return (self.root / "lfs" / entry.lfs).read_bytes() if entry.lfs else (self.root / "objects" / entry.oid).read_bytes()

    # ------------------------------------------------------------------------------ storage
    def store_regular(self, data: bytes) -> str:
        oid = git_blob_oid(data)
        (self.root / "objects" / oid).write_bytes(data)
        return oid

    def has_lfs(self, sha256: str) -> bool:
        return bool(re.fullmatch(r"[0-9a-f]{64}", sha256)) and (self.root / "lfs" / sha256).is_file()

    def sign(self, *parts: str) -> str:
        return hmac.new(self.secret, "|".join(parts).encode(), hashlib.sha256).hexdigest()[:32]

    def resolve(self, repo: Repo, revision: str) -> str:
        for prefix, refs in (("refs/heads/", repo.branches), ("refs/tags/", repo.tags), ("", repo.branches), ("", repo.tags)):
            if revision.startswith(prefix) and revision[len(prefix):] in refs:
                return refs[revision[len(prefix):]]
        if revision in repo.commits:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def commit(self, repo: Repo, parent: str | None, title: str, tree: dict[str, Entry], branch: str = "main") -> str:
        oid = hashlib.sha1(f"{parent}\n{title}\n{sorted((p, e.oid) for p, e in tree.items())}\n{len(repo.commits)}".encode()).hexdigest()
        repo.commits[oid] = Commit(oid, parent, title, tree)
        repo.branches[branch] = oid
        return oid


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client expects
    hub: LocalHub

    def log_message(self, format, *args) -> None:  # quiet: tests read hub.requests instead
        pass

    def handle_one(self) -> None:
        self._body: bytes | None = None
        self.body()  # read whatever the client sent first, so that the kept-alive connection stays in step
        hub = self.hub
        with hub.lock:
            hub.requests.append((self.command, self.path))
            failure = next((f for f in hub.failures if f.method == self.command and re.search(f.pattern, self.path)), None)
            if failure:
                failure.times -= 1
                if not failure.times:
                    hub.failures.remove(failure)
        try:
            if failure:
                raise HubError(failure.status, failure.message)
            self.route()
        except HubError as error:
            headers = {"X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            self.send(error.status, error.body or {"error": error.message}, headers)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_one

    # ------------------------------------------------------------------------------ plumbing
    def body(self) -> bytes:
        if self._body is None:
            self._body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return self._body

    def json(self) -> dict:
        return json.loads(self.body() or b"{}")

    def send(self, status: int, payload=None, headers: dict | None = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(payload if payload is not None else {}).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def user(self, required: bool = False) -> str | None:
        auth = self.headers.get("Authorization", "")
        if not auth:
            if required:
                raise HubError(401, "You must be authenticated")
            return None
        token = auth.removeprefix("Bearer ").strip()
        if token not in self.hub.tokens:
            raise HubError(401, "Invalid credentials in Authorization header")
        return self.hub.tokens[token]

    def repo(self, repo_type: str, repo_id: str, write: bool = False) -> Repo:
        user = self.user(required=write)
        repo = self.hub.repos.get((repo_type, repo_id))
        owner = repo_id.split("/")[0]
        if repo is None or (repo.private and user != owner):
            raise HubError(404, "Repository not found", "RepoNotFound")
        if write and user != owner:
            raise HubError(403, "You don't have the rights to write to this repository")
        return repo

    def base(self) -> str:
        return f"http://{self.headers['Host']}"

    # ------------------------------------------------------------------------------ routing
    def route(self) -> None:
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        parts = [unquote(part) for part in url.path.split("/") if part]  # revisions arrive quoted as one segment
        method = self.command
        if parts[:1] == ["api"]:
            return self.route_api(method, parts[1:])
        if parts[:1] == ["_lfs"]:
            return self.lfs_transfer(method, parts[1:])
        repo_type = "dataset" if parts[:1] == ["datasets"] else "model"
        parts = parts[1:] if repo_type == "dataset" else parts
        if method == "POST" and len(parts) == 6 and parts[1].endswith(".git") and parts[2:] == ["info", "lfs", "objects", "batch"]:
            return self.lfs_batch(repo_type, f"{parts[0]}/{parts[1][:-4]}")
        if method in ("GET", "HEAD") and len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve_file(repo_type, f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]))
        raise HubError(404, f"Not found: {method} {url.path}")

    def route_api(self, method: str, parts: list[str]) -> None:
        if parts == ["whoami-v2"] and method == "GET":
            return self.send(200, {"type": "user", "name": self.user(required=True), "orgs": [],
                                   "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}})
        if parts == ["repos", "create"] and method == "POST":
            return self.create_repo()
        if parts == ["validate-yaml"] and method == "POST":
            return self.validate_yaml()
        if parts == ["agent-harnesses"] and method == "GET":  # the client's best-effort lookup
            return self.send(200, {"standardEnvVars": [], "harnesses": {}})
        if len(parts) >= 3 and parts[0] in TYPES:
            repo_type, repo_id, rest = TYPES[parts[0]], f"{parts[1]}/{parts[2]}", parts[3:]
            action, argument = (rest + [None, None])[:2]
            if action is None and method == "GET":
                return self.info(repo_type, repo_id, "main")
            if action == "auth-check" and method == "GET":
                return self.auth_check(repo_type, repo_id)
            routes = {
                ("revision", "GET"): lambda: self.info(repo_type, repo_id, argument),
                ("refs", "GET"): lambda: self.refs(repo_type, repo_id),
                ("tree", "GET"): lambda: self.tree(repo_type, repo_id, argument, "/".join(rest[2:])),
                ("paths-info", "POST"): lambda: self.paths_info(repo_type, repo_id, argument),
                ("preupload", "POST"): lambda: self.preupload(repo_type, repo_id, argument),
                ("commit", "POST"): lambda: self.commit(repo_type, repo_id, argument),
                ("tag", "POST"): lambda: self.create_tag(repo_type, repo_id, argument),
                ("tag", "DELETE"): lambda: self.delete_tag(repo_type, repo_id, argument),
            }
            if (action, method) in routes:
                return routes[(action, method)]()
        raise HubError(404, f"Not found: {method} /api/{'/'.join(parts)}")

    # ------------------------------------------------------------------------------ repositories
    def create_repo(self) -> None:
        user = self.user(required=True)
        body = self.json()
        repo_type = body.get("type") or "model"
        namespace = body.get("organization") or user
        repo_id = f"{namespace}/{body['name']}"
        url = f"{self.base()}/{PREFIX[repo_type]}{repo_id}"
        if namespace != user:
            raise HubError(403, "You don't have the rights to create a repository under this namespace")
        with self.hub.lock:
            if (repo_type, repo_id) in self.hub.repos:  # the client reads `url` from the 409 too
                raise HubError(409, f"You already created this {repo_type} repo", body={"error": "exists", "url": url})
            repo = Repo(repo_type, repo_id, private=body.get("visibility", "public") == "private")
            tree = {".gitattributes": Entry(self.hub.store_regular(GITATTRIBUTES), len(GITATTRIBUTES))}
            self.hub.commit(repo, None, "initial commit", tree)
            self.hub.repos[(repo_type, repo_id)] = repo
        self.send(200, {"url": url, "name": repo_id})

    def validate_yaml(self) -> None:
        content = self.json().get("content", "")
        match = re.match(r"^---\n(.*?)\n---\n", content, re.DOTALL)
        errors = []
        if content.startswith("---") and not match:
            errors.append({"message": "unterminated YAML front matter"})
        elif match:
            try:
                metadata = yaml.safe_load(match.group(1))
                if not isinstance(metadata, dict):
                    errors.append({"message": "the metadata must be a mapping"})
            except yaml.YAMLError as error:
                errors.append({"message": f"invalid YAML: {error}"})
        if errors:
            raise HubError(400, "Invalid metadata", body={"errors": errors, "warnings": []})
        self.send(200, {"errors": [], "warnings": []})

    def info(self, repo_type: str, repo_id: str, revision: str) -> None:
        with self.hub.lock:
            repo = self.repo(repo_type, repo_id)
            oid = self.hub.resolve(repo, revision)
            tree = repo.commits[oid].tree
            siblings = [{"rfilename": path} for path in sorted(tree)]
            readme = self.hub.read(tree["README.md"]).decode() if "README.md" in tree else ""
        match = re.match(r"^---\n(.*?)\n---\n", readme, re.DOTALL)
        card_data = (yaml.safe_load(match.group(1)) or {}) if match else None
        self.send(200, {"id": repo_id, "sha": oid, "private": repo.private, "gated": "auto" if repo.gated else False,
                        "disabled": False, "author": repo_id.split("/")[0], "tags": [], "siblings": siblings,
                        "downloads": 0, "likes": 0, **({"cardData": card_data} if card_data is not None else {})})

    def auth_check(self, repo_type: str, repo_id: str) -> None:
        with self.hub.lock:
            self.readable(self.repo(repo_type, repo_id))
        self.send(200, {})

    def readable(self, repo: Repo) -> None:
        """A gated repository's files are for the users it was granted to (401 without a token, as on the Hub)."""
        if repo.gated:
            user = self.user()
            if user not in repo.granted:
                raise HubError(401 if user is None else 403, f"Access to {repo.repo_id} is restricted", "GatedRepo")

    def refs(self, repo_type: str, repo_id: str) -> None:
        with self.hub.lock:
            repo = self.repo(repo_type, repo_id)
            branches = [{"name": n, "ref": f"refs/heads/{n}", "targetCommit": o} for n, o in sorted(repo.branches.items())]
            tags = [{"name": n, "ref": f"refs/tags/{n}", "targetCommit": o} for n, o in sorted(repo.tags.items())]
        self.send(200, {"branches": branches, "converts": [], "tags": tags})

    def tree(self, repo_type: str, repo_id: str, revision: str, folder: str) -> None:
        recursive = self.query.get("recursive", ["false"])[0] == "true"
        with self.hub.lock:
            repo = self.repo(repo_type, repo_id)
            tree = repo.commits[self.hub.resolve(repo, revision)].tree
        prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
        paths = [path for path in sorted(tree) if path.startswith(prefix)]
        if prefix and not paths:
            raise HubError(404, f"{folder} not found", "EntryNotFound")
        entries, folders = [], set()
        for path in paths:
            rest = path[len(prefix):].split("/")
            for depth in range(1, len(rest)):
                folders.add(prefix + "/".join(rest[:depth]))
            if recursive or len(rest) == 1:
                entries.append(_entry_json(path, tree[path]))
        entries += [{"type": "directory", "oid": git_blob_oid(f.encode()), "size": 0, "path": f}
                    for f in sorted(folders) if recursive or "/" not in f[len(prefix):]]
        self.send(200, entries)

    def paths_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        paths = parse_qs(self.body().decode()).get("paths", [])  # form-encoded by the client
        with self.hub.lock:
            repo = self.repo(repo_type, repo_id)
            tree = repo.commits[self.hub.resolve(repo, revision)].tree
        self.send(200, [_entry_json(path, tree[path]) for path in paths if path in tree])

    def preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        body = self.json()
        with self.hub.lock:
            repo = self.repo(repo_type, repo_id, write=True)
            tree = repo.commits[self.hub.resolve(repo, revision)].tree
            patterns = [line.split()[0] for line in self.hub.read(tree[".gitattributes"]).decode().splitlines()
                        if "filter=lfs" in line] if ".gitattributes" in tree else []
        files = []
        for item in body["files"]:
            sample = base64.b64decode(item["sample"])
            path = item["path"]
            lfs = item["size"] >= LFS_THRESHOLD or b"\0" in sample or any(fnmatch.fnmatch(path.split("/")[-1], p) for p in patterns)
            stored = tree.get(path)
            # The oid of what the path holds now (sha256 for LFS files): the client skips unchanged files by it.
            oid = (stored.lfs or stored.oid) if stored else None
            files.append({"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
        self.send(200, {"files": files, "commitOid": repo.branches["main"]})

    def commit(self, repo_type: str, repo_id: str, revision: str) -> None:
        lines = [json.loads(line) for line in self.body().splitlines() if line.strip()]
        header = lines[0]["value"]
        with self.hub.lock:
            repo = self.repo(repo_type, repo_id, write=True)
            head = self.hub.resolve(repo, revision)
            if header.get("parentCommit") and header["parentCommit"] != head:
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            tree = dict(repo.commits[head].tree)
            for line in lines[1:]:
                key, value = line["key"], line["value"]
                path = value["path"]
                if key == "file":
                    data = base64.b64decode(value["content"])
                    tree[path] = Entry(self.hub.store_regular(data), len(data))
                elif key == "lfsFile":
                    if not self.hub.has_lfs(value["oid"]):
                        raise HubError(422, f"LFS object {value['oid']} for {path} was never uploaded")
                    pointer = lfs_pointer(value["oid"], value["size"])
                    tree[path] = Entry(git_blob_oid(pointer), value["size"], lfs=value["oid"])
                elif key == "deletedFile":
                    if path not in tree:
                        raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                    del tree[path]
                elif key == "deletedFolder":
                    for victim in [p for p in tree if p.startswith(path.rstrip("/") + "/")]:
                        del tree[victim]
                else:
                    raise HubError(400, f"unknown commit operation {key!r}")
            oid = self.hub.commit(repo, head, header["summary"], tree)
        url = f"{self.base()}/{PREFIX[repo_type]}{repo_id}"
        self.send(200, {"success": True, "commitOid": oid, "commitUrl": f"{url}/commit/{oid}", "hookOutput": "",
                        "pullRequestUrl": None})

    def create_tag(self, repo_type: str, repo_id: str, revision: str) -> None:
        tag = self.json()["tag"]
        with self.hub.lock:
            repo = self.repo(repo_type, repo_id, write=True)
            if tag in repo.tags:
                raise HubError(409, f"Tag {tag} already exists")
            repo.tags[tag] = self.hub.resolve(repo, revision)
        self.send(200, {})

    def delete_tag(self, repo_type: str, repo_id: str, tag: str) -> None:
        with self.hub.lock:
            repo = self.repo(repo_type, repo_id, write=True)
            if repo.tags.pop(tag, None) is None:
                raise HubError(404, f"Tag {tag} not found", "RevisionNotFound")
        self.send(200, {})

    # ------------------------------------------------------------------------------ LFS
    def lfs_batch(self, repo_type: str, repo_id: str) -> None:
        body = self.json()
        self.repo(repo_type, repo_id, write=True)
        objects = []
        for item in body["objects"]:
            sha, size = item["oid"], item["size"]
            described = {"oid": sha, "size": size, "authenticated": True}
            if not self.hub.has_lfs(sha):  # without "actions" the client knows the object is stored and skips it
                signature = self.hub.sign(sha, str(size))
                described["actions"] = {
                    "upload": {"href": f"{self.base()}/_lfs/{sha}/{size}?sig={signature}"},
                    "verify": {"href": f"{self.base()}/_lfs/verify/{sha}?sig={signature}"},
                }
            objects.append(described)
        self.send(200, {"transfer": "basic", "objects": objects})

    def lfs_transfer(self, method: str, parts: list[str]) -> None:
        """Signed URLs: the client sends no Authorization header with LFS uploads."""
        signature = self.query.get("sig", [""])[0]
        if method == "PUT" and len(parts) == 2:
            sha, size = parts
            if not hmac.compare_digest(signature, self.hub.sign(sha, size)):
                raise HubError(403, "Bad signature")
            data = self.body()
            if hashlib.sha256(data).hexdigest() != sha or len(data) != int(size):
                raise HubError(400, "The content does not match its oid and size")
            (self.hub.root / "lfs" / sha).write_bytes(data)
            return self.send(200, {})
        if method == "POST" and len(parts) == 2 and parts[0] == "verify":
            if not self.hub.has_lfs(parts[1]):
                raise HubError(422, "Verification failed: the object is not stored")
            return self.send(200, {"success": True})
        raise HubError(404, "Not found")

    # ------------------------------------------------------------------------------ downloads
    def resolve_file(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        with self.hub.lock:
            repo = self.repo(repo_type, repo_id)
            self.readable(repo)
            oid = self.hub.resolve(repo, revision)
            entry = repo.commits[oid].tree.get(path)
        if entry is None:
            raise HubError(404, "Entry not found", "EntryNotFound")
        etag = entry.lfs or entry.oid
        headers = {"X-Repo-Commit": oid, "ETag": f'"{etag}"', "X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(entry.size),
                   "Accept-Ranges": "bytes"}
        data = self.hub.read(entry)
        ranged = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if ranged and data:
            first, last = ranged.groups()
            start = int(first) if first else max(0, len(data) - int(last))
            end = min(len(data) - 1, int(last)) if first and last else len(data) - 1
            if start >= len(data):
                raise HubError(416, "Range Not Satisfiable")
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return self.send(206, headers=headers, raw=data[start:end + 1])
        self.send(200, headers=headers, raw=data)


def _entry_json(path: str, entry: Entry) -> dict:
    described = {"type": "file", "oid": entry.oid, "size": entry.size, "path": path}
    if entry.lfs:
        described["lfs"] = {"oid": entry.lfs, "size": entry.size, "pointerSize": len(lfs_pointer(entry.lfs, entry.size))}
    return described
