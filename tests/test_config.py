"""``mllzoo config``: settings in the user config folder, and the one-line errors around them."""

from __future__ import annotations

import json

from conftest import run_cli


def test_set_get_list_unset_round_trip(user_config):
    env = {"XDG_CONFIG_HOME": str(user_config)}
    assert run_cli("config", "get", "captioner", env=env).stdout.strip() == "templates"
    assert run_cli("config", "set", "captioner", "openai", env=env).returncode == 0
    assert json.loads((user_config / "mllzoo" / "config.json").read_text()) == {
        "captioner": "openai"
    }
    assert json.loads(run_cli("config", "get", "captioner", "--json", env=env).stdout) == {
        "key": "captioner",
        "value": "openai",
    }
    listed = json.loads(run_cli("config", "list", "--json", env=env).stdout)
    rows = {row["key"]: row for row in listed["settings"]}
    assert rows["captioner"]["value"] == "openai" and rows["captioner"]["set"]
    assert rows["embedder"] == {**rows["embedder"], "value": "minilm", "set": False}
    assert listed["path"] == str(user_config / "mllzoo" / "config.json")
    assert run_cli("config", "unset", "captioner", env=env).returncode == 0
    assert run_cli("config", "get", "captioner", env=env).stdout.strip() == "templates"


def test_bad_keys_values_and_files_are_one_line(user_config):
    env = {"XDG_CONFIG_HOME": str(user_config)}
    for args, expected in [
        (("get", "colour"), "unknown setting 'colour'"),
        (("set", "captioner", "gpt"), "captioner must be one of templates, openai"),
    ]:
        result = run_cli("config", *args, env=env)
        assert (
            result.returncode == 2
            and expected in result.stderr
            and "Traceback" not in result.stderr
        )
    (user_config / "mllzoo").mkdir(parents=True)
    (user_config / "mllzoo" / "config.json").write_text("{not json")
    result = run_cli("config", "list", env=env)
    assert (
        result.returncode == 2
        and "fix or delete the file" in result.stderr
        and len(result.stderr.splitlines()) == 1
    )
