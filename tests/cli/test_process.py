"""The CLI's shared pieces: one-line validation messages, query literals that never carry query syntax, tables
that keep whole IDs off a terminal."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cli import process as cli
from workflows.models import ApprovalDecision


def test_cli_describe_validation_is_one_line_without_pydantic_urls() -> None:
    with pytest.raises(ValidationError) as err:
        ApprovalDecision(approver=" ", approved=True)
    text = cli.describe_validation(err.value)
    assert text == "approver is required" or text.startswith("approver: ")
    assert "pydantic" not in text and "http" not in text and "\n" not in text


@pytest.mark.parametrize("value", ['a"b', "a\\b", "a\nb", "x\x00"])
def test_cli_visibility_literal_refuses_what_no_id_contains(value: str) -> None:
    with pytest.raises(cli.CliError) as err:
        cli.visibility_literal(value)
    assert err.value.code == cli.USAGE and err.value.message.startswith("not an ID")


def test_cli_visibility_literal_quotes_ids() -> None:
    assert cli.visibility_literal("xero:contact:9b2e-41") == '"xero:contact:9b2e-41"'
    assert cli.visibility_literal("stripe:customer:cus_1 'x'") == "\"stripe:customer:cus_1 'x'\""


def test_cli_table_keeps_whole_ids_and_aligns_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    long_id = "4f7a0c1e-0001-4000-8000-000000000001" * 4
    cli.table(["deal", "ID"], [["1", long_id], ["22", "cus_1"]])
    lines = capsys.readouterr().out.splitlines()
    assert long_id in lines[1]
    assert lines[1].index(long_id) == lines[2].index("cus_1") == lines[0].index("ID")
    assert "\x1b[" not in "".join(lines)  # no colour codes in a pipe
