"""Hub datasets in their real layout (tests/fixtures/hub/), served by the local Hub (tests/hub_server.py).

Each fixture holds a repository's files by branch: the card where its YAML decides the configurations, and a few
rows per data file in the columns, types and nesting the real file has (the evidence is in
medrecipe/catalog/datasets.py). The rows are written here in the file's real format: a JSON array, JSON lines
(plain or zstd-compressed), or Parquet.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures" / "hub"


def fixture(repo: str) -> dict:
    return json.loads((FIXTURES / (repo.replace("/", "__") + ".json")).read_text(encoding="utf-8"))


def repos() -> list[str]:
    return sorted(json.loads(path.read_text(encoding="utf-8"))["repo"] for path in FIXTURES.glob("*.json"))


def rows(repo: str, path: str, branch: str = "main") -> list:
    return fixture(repo)["branches"][branch][path]


def encoded(path: str, content) -> bytes:
    """A file's bytes in the format its name says."""
    if isinstance(content, str):
        return content.encode("utf-8")
    if path.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(content), buffer)
        return buffer.getvalue()
    if path.endswith(".json"):
        return json.dumps(content, ensure_ascii=False).encode("utf-8")
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in content).encode("utf-8")
    if path.endswith(".zst"):
        try:
            from compression import zstd
        except ImportError:
            from backports import zstd
        return zstd.compress(lines)
    return lines


def seed(hub, repo: str, gated: bool = False) -> None:
    """Create the fixture repository `repo` on the local Hub."""
    branches = fixture(repo)["branches"]
    hub.seed("dataset", repo, {name: {path: encoded(path, content) for path, content in files.items()}
                               for name, files in branches.items()}, gated=gated)
