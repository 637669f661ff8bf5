"""README's multi-kind example ("Kinds and scheduled orders"), run as written: its
shop/tasks.py block saved as that file, its shell block run by bash in that folder with the
installed `skipline` script (no PYTHONPATH). Only the port differs (SKIPLINE_PORT and
SKIPLINE_URL, and the curl line's address), so parallel test runs do not collide."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from skipline.testing import free_port

README = Path(__file__).resolve().parents[2] / "README.md"


def section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Kinds and scheduled orders")
    return text[start:text.index("\n## ", start + 1)]


def test_the_readme_multi_kind_example_runs_as_written(tmp_path: Path) -> None:
    text = section()
    python = re.search(r"```python\n(# shop/tasks\.py\n.*?)```", text, flags=re.S)
    shell = re.search(r"```bash\n(.*?)```", text, flags=re.S)
    assert python is not None and shell is not None
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "tasks.py").write_text(python.group(1), encoding="utf-8")
    port = free_port()
    script = shell.group(1).replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    bin_dir = str(Path(sys.executable).parent)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SKIPLINE_") and k != "PYTHONPATH"}
    env.update(PATH=f"{bin_dir}:{env.get('PATH', '')}", SKIPLINE_PORT=str(port),
               SKIPLINE_URL=f"http://127.0.0.1:{port}")
    result = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    out, err = result.stdout, result.stderr
    assert out.count("succeeded") >= 2, out + err
    assert "book" in out and "ann@example.com" in out, out
    assert "kind 'refund' is not served here; known kinds: receipt, ship" in err, err
    stats = json.loads(out[out.index('{"tiers"'):].splitlines()[0])
    assert stats["kinds"]["ship"]["succeeded"] == 1
    assert stats["kinds"]["receipt"]["succeeded"] == 1
