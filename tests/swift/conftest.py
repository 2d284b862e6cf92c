"""The ms-swift adapter's tests run in their own virtual environment (.venv-swift): ms-swift 4.6
pins trl < 1.0 and transformers < 5.20, the trl extra needs newer ones. Shared fixtures come
from the parent folder."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from char_tokenizer import char_tokenizer
from swift_run import REWARDS_PLUGIN
from trl_setup import tiny_model

from tests.servers import ServiceProcess


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("swift")
    tokenizer = char_tokenizer()
    tokenizer.chat_template = "{% for m in messages %}{{ m['content'] }}:{% endfor %}"
    tiny_model(tokenizer).save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    words = ["say hi", "count to 3", "spell cat", "add 1 and 2", "name a colour", "greet me"]
    with open(folder / "data.jsonl", "w") as handle:
        for i in range(64):
            handle.write(json.dumps({"messages": [{"role": "user", "content": words[i % 6]}]}))
            handle.write("\n")
    (folder / "rewards_plugin.py").write_text(REWARDS_PLUGIN)
    server = ServiceProcess(env={"SPARD_AUTH_DISABLED": "true"}).start()
    yield folder, server
    server.stop()
