"""`locollm data check`: every checklist line, exit codes 0/1/2, bad input as located messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, write_jsonl

from locollm.cli import cli
from locollm.data.check import check_dataset

INSTR = "Solve the following arithmetic word problem. Show your reasoning step by step."
NAMES = ["Tom", "Ana", "Lee", "Maya", "Sam", "Nora", "Ravi", "Ella", "Omar", "Zoe", "Ivy", "Kai"]
THINGS = ["apples", "marbles", "stickers", "books", "coins", "pencils", "cards", "shells"]


def problems(n: int, start: int = 0, difficulty: bool = True) -> list[dict]:
    """n distinct templated problems (a shared instruction, different names and numbers)."""
    rows = []
    for i in range(start, start + n):
        a, b = 10 + i % 83, 11 + (i * 7) % 79
        name, thing = NAMES[i % len(NAMES)], THINGS[(i // len(NAMES)) % len(THINGS)]
        row = {"instruction": INSTR,
               "input": f"{name} has {a} {thing} and finds {b} more on day {i}. How many now?",
               "output": f"{a} + {b} = {a + b}\nThe answer is {a + b}."}
        if difficulty:
            row["difficulty"] = ["easy", "medium", "hard"][i % 3]
        rows.append(row)
    return rows


def check(*args: str):
    return CliRunner().invoke(cli, ["data", "check", *map(str, args)])


def item(report, name: str):
    return next(i for i in report.items if i.name == name)


def with_log(folder: Path, *names: str) -> None:
    (folder / "TRAINING_LOG.md").write_text("# log\n## Data sources\n" +
                                            "".join(f"- {n}: made by hand\n" for n in names))


def test_shipped_math_dataset_passes_with_no_fails():
    result = check(REPO / "adapters/math/training/dataset.jsonl", "--benchmark",
                   REPO / "adapters/math/eval/benchmark.jsonl", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["failed"] is False
    assert report["counts"].get("fail", 0) == 0
    # the one warning is a true finding, kept in the shipped set as trained (TRAINING_LOG.md)
    warns = [i["name"] for i in report["items"] if i["status"] == "warn"]
    assert warns in ([], ["reworded examples (training)"])
    names = [i["name"] for i in report["items"]]
    assert "benchmark separate from training" in names and "sources documented" in names


def test_clean_dataset_passes_and_reports_numbers(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", problems(520))
    bench = write_jsonl(tmp_path / "bench.jsonl", problems(60, start=600))
    with_log(tmp_path, "train.jsonl", "bench.jsonl")
    report = check_dataset(train, bench)
    assert not report.failed, [(i.name, i.status, i.detail) for i in report.items]
    assert item(report, "size (training)").data["examples"] == 520
    assert item(report, "difficulty spread").data["training"] == {"easy": 174, "medium": 173,
                                                                  "hard": 173}
    assert item(report, "lengths").data["output_chars"]["max"] > 0


def test_small_sets_warn_but_do_not_fail(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", problems(40))
    bench = write_jsonl(tmp_path / "bench.jsonl", problems(8, start=100))
    report = check_dataset(train, bench)
    assert item(report, "size (training)").status == "warn"
    assert item(report, "size (benchmark)").status == "warn"
    assert check(train, "--benchmark", bench).exit_code == 0


def test_exact_duplicate_rows_fail_with_their_lines(tmp_path):
    rows = problems(30)
    copy = dict(rows[4], input=rows[4]["input"].upper() + "  ")  # case and spacing only
    train = write_jsonl(tmp_path / "train.jsonl", rows + [copy])
    report = check_dataset(train)
    dup = item(report, "exact duplicates (training)")
    assert dup.status == "fail" and dup.data["duplicate_rows"] == 1
    assert dup.problems == [f"{train}:5: repeated at line(s) 31"]
    result = check(train)
    assert result.exit_code == 1 and "[fail] exact duplicates" in result.output


def test_same_prompt_with_different_outputs_is_a_warning(tmp_path):
    rows = problems(20)
    rows.append(dict(rows[2], output="something else entirely"))
    report = check_dataset(write_jsonl(tmp_path / "t.jsonl", rows))
    dup = item(report, "exact duplicates (training)")
    assert dup.status == "warn" and dup.data["conflicting_prompts"] == 1


def test_near_duplicates_are_paired_with_similarity(tmp_path):
    rows = problems(40)
    long_input = ("A farmer plants 24 rows of corn with 13 plants in every row, then a storm "
                  "flattens 5 whole rows near the river. How many plants are still standing?")
    rows.append({"instruction": INSTR, "input": long_input, "output": "247"})
    rows.append({"instruction": INSTR, "input": long_input.replace("storm", "gale"),
                 "output": "247"})
    report = check_dataset(write_jsonl(tmp_path / "t.jsonl", rows))
    near = item(report, "near-duplicates (training)")
    assert near.status == "warn" and near.data["pairs"] == 1
    top = near.data["top"][0]
    assert (top["a"], top["b"]) == (41, 42) and 0.8 <= top["similarity"] < 1.0


def test_shared_template_alone_is_not_a_near_duplicate(tmp_path):
    """Problems that share a long instruction and a question template differ by content."""
    report = check_dataset(write_jsonl(tmp_path / "t.jsonl", problems(300)))
    near = item(report, "near-duplicates (training)")
    assert near.status == "pass" and near.data["boilerplate_shingles"] > 0


def test_contamination_exact_and_near_fails(tmp_path):
    rows = problems(100)
    long_input = ("Every Saturday morning the library lends 48 picture books and 27 comics "
                  "to the children of the village school. How many items are lent in total?")
    rows.append({"instruction": INSTR, "input": long_input, "output": "75"})
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    bench_rows = problems(10, start=500) + [
        dict(rows[7]),  # verbatim
        {"instruction": INSTR, "input": long_input.replace("village", "town"), "output": "75"},
    ]
    bench = write_jsonl(tmp_path / "bench.jsonl", bench_rows)
    report = check_dataset(train, bench)
    sep = item(report, "benchmark separate from training")
    assert sep.status == "fail" and sep.data["contaminated"] == 2
    assert sep.problems[0] == f"{bench}:11: same as {train}:8 (similarity 1.00)"
    assert f"{bench}:12: near {train}:101" in sep.problems[1]
    assert check(train, "--benchmark", bench).exit_code == 1


def test_difficulty_single_level_fails_and_rare_level_warns(tmp_path):
    one = [dict(r, difficulty="easy") for r in problems(30)]
    assert item(check_dataset(write_jsonl(tmp_path / "a.jsonl", one)),
                "difficulty spread").status == "fail"
    rare = [dict(r, difficulty="hard" if i < 2 else "easy") for i, r in enumerate(problems(30))]
    spread = item(check_dataset(write_jsonl(tmp_path / "b.jsonl", rare)), "difficulty spread")
    assert spread.status == "warn" and "hard" in spread.detail
    missing = item(check_dataset(write_jsonl(tmp_path / "c.jsonl", problems(30, difficulty=False))),
                   "difficulty spread")
    assert missing.status == "warn" and "no 'difficulty'" in missing.detail


def test_inconsistent_schema_and_unknown_fields_are_reported(tmp_path):
    rows = problems(20)
    rows[5]["difficulty"] = 3
    rows[9].pop("difficulty")
    rows[12]["notes"] = "notes.txt"
    fields = item(check_dataset(write_jsonl(tmp_path / "t.jsonl", rows)), "fields (training)")
    assert fields.status == "warn" and fields.data["shapes"] == 4
    text = "\n".join(fields.problems)
    assert f"{tmp_path / 't.jsonl'}:6: 'difficulty' is number (elsewhere string)" in text
    assert ":10: no 'difficulty'" in text and ":13: extra 'notes'" in text
    assert fields.data["unknown_fields"] == {"difficulty": 19, "notes": 1}


def test_lines_with_a_source_are_held_to_their_own_schema(tmp_path):
    """Replay data mixed into a domain set has other fields; drift inside it still warns."""
    replay = [{"instruction": f"Name a colour number {i}.", "input": "", "output": "Blue",
               "source": "replay", "category": "general"} for i in range(6)]
    path = write_jsonl(tmp_path / "t.jsonl", problems(20) + replay)
    fields = item(check_dataset(path), "fields (training)")
    assert fields.status == "pass" and "with and without a source" in fields.detail
    replay[2]["category"] = 7
    fields = item(check_dataset(write_jsonl(tmp_path / "t.jsonl", problems(20) + replay)),
                  "fields (training)")
    assert fields.status == "warn" and ":23: 'category' is number" in "\n".join(fields.problems)


def test_long_examples_warn_against_max_seq_len(tmp_path):
    rows = problems(20)
    rows[3]["output"] = "word " * 400
    lengths = item(check_dataset(write_jsonl(tmp_path / "t.jsonl", rows), max_tokens=512),
                   "lengths")
    assert lengths.status == "warn" and lengths.data["likely_over_max_seq_len"] == 1
    assert lengths.problems[0].startswith(f"{tmp_path / 't.jsonl'}:4:")


def test_empty_outputs_fail(tmp_path):
    rows = problems(20)
    rows[2]["output"] = "  \n "
    report = check_dataset(write_jsonl(tmp_path / "t.jsonl", rows))
    empty = item(report, "empty outputs")
    assert empty.status == "fail" and empty.problems == [f"{tmp_path / 't.jsonl'}:3"]
    assert item(report, "schema (training)").status == "fail"


def test_one_output_for_many_prompts_warns(tmp_path):
    rows = problems(30)
    for r in rows[:6]:
        r["output"] = "I cannot help with that."
    repeated = item(check_dataset(write_jsonl(tmp_path / "t.jsonl", rows)), "repeated outputs")
    assert repeated.status == "warn" and repeated.data["most_common"] == 6
    assert "answers 6 different prompts" in repeated.problems[0]


def test_sources_must_be_named_in_the_log(tmp_path):
    rows = [dict(r, source="openai/gsm8k") for r in problems(20)]
    train = write_jsonl(tmp_path / "training" / "dataset.jsonl", rows)
    assert item(check_dataset(train), "sources documented").status == "warn"  # no log yet
    with_log(tmp_path / "training", "dataset.jsonl")
    sources = item(check_dataset(train), "sources documented")
    assert sources.status == "fail" and sources.data["missing"] == ["openai/gsm8k"]
    with_log(tmp_path / "training", "dataset.jsonl", "GSM8K from openai/gsm8k")
    assert item(check_dataset(train), "sources documented").status == "pass"
    (tmp_path / "training" / "generate_data.py").write_text("# generator\n")
    assert item(check_dataset(train), "sources documented").data["missing"] == [
        "generate_data.py"]


BAD_INPUTS = {
    "not_utf8": (b'{"instruction": "a", "output": "b"}\n{"instruction": "\xff\xfe", '
                 b'"output": "b"}\n', 1, ":2: not UTF-8"),
    "truncated_last_line": (b'{"instruction": "a", "output": "b"}\n{"instruction": "c", "out',
                            1, ":2: invalid JSON"),
    "wrong_types": (b'{"instruction": "a", "output": "b"}\n{"instruction": ["x"], "output": 5}\n',
                    1, ":2: 'instruction' must be a string, got array"),
    "not_an_object": (b'{"instruction": "a", "output": "b"}\n[1, 2]\n', 1,
                      ":2: expected a JSON object, got array"),
    "huge_line": (b'{"instruction": "a", "output": "b"}\n{"instruction": "' + b"x" * (1 << 20) +
                  b'", "output": "b"}\n', 1, ":2: line is 1,048,"),
    "json_array": (b'[\n {"instruction": "a", "output": "b"},\n {"instruction": "c", '
                   b'"output": "d"}\n]\n', 2, ":1: this is one JSON array, not JSONL"),
    "empty": (b"", 2, "file is empty"),
    "only_blank_lines": (b"\n  \n\n", 2, "file is empty"),
    "binary": (b"\x00\x01\xff\xfe" * 100, 2, ":1: not UTF-8"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_is_located_never_a_traceback(tmp_path, name):
    content, code, message = BAD_INPUTS[name]
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(content)
    result = check(path)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an exception
    assert "Traceback" not in result.output
    where = message.split()[0]
    if where.startswith(":"):
        assert f"{path}{where}" in result.output


def test_truncated_last_line_hint_and_bom(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"instruction": "a", "output": "b"}\n{"instruction": "c"')
    result = check(path)
    assert result.exit_code == 1
    assert f"{path}:2: invalid JSON" in result.output and "truncated" in result.output
    assert f"{path}:1" not in result.output  # the byte-order mark is not an error


def test_missing_file_and_folder_exit_2(tmp_path):
    for target, message in ((tmp_path / "nope.jsonl", "file not found"),
                            (tmp_path, "is a folder")):
        result = check(target)
        assert result.exit_code == 2 and message in result.output


def test_unreadable_benchmark_exits_2(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", problems(10))
    bench = tmp_path / "bench.jsonl"
    bench.write_text("")
    result = check(train, "--benchmark", bench)
    assert result.exit_code == 2 and "benchmark" in result.output


def test_json_output_is_machine_readable(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", problems(12) + [problems(12)[0]])
    result = check(train, "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["failed"] is True and report["counts"]["fail"] == 1
    dup = next(i for i in report["items"] if i["name"] == "exact duplicates (training)")
    assert dup["status"] == "fail" and dup["data"]["duplicate_rows"] == 1
