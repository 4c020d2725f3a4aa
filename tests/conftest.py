import json
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad-es"


@pytest.fixture
def write_json(tmp_path):
    """Write an object (or raw text/bytes) to a file in tmp_path and return its path."""
    def write(obj, name="bad.json"):
        path = tmp_path / name
        if isinstance(obj, bytes):
            path.write_bytes(obj)
        elif isinstance(obj, str):
            path.write_text(obj, encoding="utf-8")
        else:
            path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
        return path
    return write


def squad(context, qas, title="Prueba"):
    return {"version": "v2.0", "data": [{"title": title, "paragraphs": [{"context": context, "qas": qas}]}]}


def shared_file(name):
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} not available (../shared is absent)")
    return path
