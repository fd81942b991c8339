"""``civicvault witness`` takes its token from the environment or a file, never silently from the command line.

A token given as ``--token`` is readable by every user of the machine in the
process list; it still works, with a warning. Every mistake is one sentence,
before any network call, and no message repeats the token.
"""

from pathlib import Path

import pytest
from click.testing import CliRunner

from crypto.bls import SigningKey
from vault.cli.main import cli

TOKEN = "cvt_" + "A" * 43
LOG_KEY = SigningKey(bytes(32)).public_key.hex()


def witness(tmp_path: Path, *args: str, env_token: str | None = None):
    return CliRunner().invoke(
        cli,
        ["witness", "--url", "http://127.0.0.1:9", "--log-key", LOG_KEY, "--state", str(tmp_path / "w"), "--once"]
        + list(args),
        env={"CIVICVAULT_WITNESS_TOKEN": env_token},
    )


def token_file(tmp_path: Path, content: str, mode: int = 0o600) -> Path:
    path = tmp_path / "token"
    path.write_text(content)
    path.chmod(mode)
    return path


def lines(result) -> list[str]:
    return [line for line in result.output.splitlines() if line.strip()]


def test_no_token_is_one_sentence(tmp_path):
    result = witness(tmp_path)
    assert result.exit_code == 1
    assert lines(result) == ["Error: No witness token: set CIVICVAULT_WITNESS_TOKEN or give --token-file FILE."]
    assert not (tmp_path / "w").exists()  # nothing done before the token is known


def test_the_token_from_the_environment_reaches_the_network_step(tmp_path):
    result = witness(tmp_path, env_token=TOKEN)
    # Port 9 (discard) is closed here: the round fails on the network, after the token was accepted.
    assert result.exit_code == 1 and lines(result)[-1].startswith("Error: cannot reach http://127.0.0.1:9")
    assert "Warning" not in result.output and TOKEN not in result.output


def test_the_token_from_a_file(tmp_path):
    result = witness(tmp_path, "--token-file", str(token_file(tmp_path, TOKEN + "\n")))
    assert result.exit_code == 1 and lines(result) == [lines(result)[-1]]
    assert lines(result)[-1].startswith("Error: cannot reach http://127.0.0.1:9")


def test_a_token_file_others_can_read_is_used_with_a_warning(tmp_path):
    path = token_file(tmp_path, TOKEN, mode=0o644)
    result = witness(tmp_path, "--token-file", str(path))
    assert lines(result)[0] == (
        f"Warning: {path} can be read by other users; make it readable by its owner only (chmod 600)."
    )
    assert "cannot reach" in result.output and TOKEN not in result.output


def test_the_deprecated_flag_works_with_a_warning(tmp_path):
    result = witness(tmp_path, "--token", TOKEN)
    assert lines(result)[0] == (
        "Warning: --token is visible to every user of this machine in the process list; set "
        "CIVICVAULT_WITNESS_TOKEN or use --token-file instead."
    )
    assert "cannot reach" in lines(result)[-1]


@pytest.mark.parametrize(
    ("args", "env_token", "said"),
    [
        (["--token", TOKEN], TOKEN, "through --token and CIVICVAULT_WITNESS_TOKEN"),
        (["--token-file", "{file}"], TOKEN, "through --token-file and CIVICVAULT_WITNESS_TOKEN"),
        (["--token", TOKEN, "--token-file", "{file}"], None, "through --token and --token-file"),
    ],
)
def test_two_sources_are_refused(tmp_path, args, env_token, said):
    path = token_file(tmp_path, TOKEN)
    result = witness(tmp_path, *[a.replace("{file}", str(path)) for a in args], env_token=env_token)
    assert result.exit_code == 1
    assert lines(result)[-1] == f"Error: Give the witness token one way only, not {said}."


@pytest.mark.parametrize(
    ("content", "said"),
    [
        ("", "is empty: it should hold the witness principal's token."),
        ("\n  \n", "is empty: it should hold the witness principal's token."),
        # A second line would become a second HTTP header.
        (TOKEN + "\nX-Injected: 1", "The witness token is not a bearer token"),
        ("two words", "The witness token is not a bearer token"),
        ("tökén", "The witness token is not a bearer token"),
        ("a" * 600, "The witness token is not a bearer token"),
    ],
)
def test_a_bad_token_file_is_one_sentence_that_never_repeats_it(tmp_path, content, said):
    result = witness(tmp_path, "--token-file", str(token_file(tmp_path, content)))
    assert result.exit_code == 1
    assert said in lines(result)[-1]
    assert "X-Injected" not in result.output and "cannot reach" not in result.output


def test_a_missing_token_file_is_one_sentence(tmp_path):
    result = witness(tmp_path, "--token-file", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert (
        lines(result)[-1]
        == f"Error: Cannot read the witness token from {tmp_path / 'nope'}: no such file or directory."
    )


def test_a_token_file_that_is_not_text_is_one_sentence(tmp_path):
    path = tmp_path / "token"
    path.write_bytes(b"\xff\xfe\x00binary")
    path.chmod(0o600)
    result = witness(tmp_path, "--token-file", str(path))
    assert result.exit_code == 1
    assert lines(result) == [f"Error: Cannot read the witness token from {path}: it is not text."]
