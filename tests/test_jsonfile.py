from __future__ import annotations

from pathlib import Path

import pytest

from hmore.errors import InputError
from hmore.io.jsonfile import read_json


def test_read_json_reads_and_names_the_file_on_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text('{"a": [1, 2]}')
    assert read_json(good) == {"a": [1, 2]}
    with pytest.raises(InputError, match=r"^partition file not found: .*gone\.json$"):
        read_json(tmp_path / "gone.json", what="partition file")
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(InputError, match=r"^corrupt ensemble file .*bad\.json: not valid JSON"):
        read_json(bad, what="ensemble file")
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="corrupt JSON file"):
        read_json(binary)
