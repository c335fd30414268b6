"""The keyword router: whole words, case-insensitive, scored by matches, deterministic ties."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from helpers_adapters import full_entry, make_adapter

from locollm.adapter.registry import Registry, write_entry
from locollm.cli import cli
from locollm.runtime.router import Router


def test_whole_words_any_case():
    router = Router({"math": ["add", "sum"], "code": ["python", "c++"]})
    assert router.route("Please ADD these").adapter == "math"
    assert router.route("my address is 3 Summit Rd").adapter is None  # no partial words
    assert router.route("write it in C++ then").adapter == "code"
    assert router.route("c++11").adapter is None
    assert router.route("").adapter is None


def test_phrases_match_across_whitespace():
    router = Router({"math": ["how many"]})
    assert router.route("How\n  many apples?").matched == ("how many",)
    assert router.route("however many").adapter is None


def test_more_keywords_win_then_occurrences_then_name():
    router = Router({"math": ["add", "sum", "total"], "stats": ["mean", "sum"],
                     "beta": ["mean"], "alpha": ["mean"]})
    route = router.route("add the sum to get the total mean")
    assert route.adapter == "math" and route.matched == ("add", "sum", "total")
    assert [s.adapter for s in route.scores] == ["math", "stats", "alpha", "beta"]
    assert "beats stats 2; alpha 1; beta 1" in route.reason()
    # one keyword each: the one found more often wins
    assert Router({"math": ["add"], "stats": ["mean"]}).route("add mean, mean").adapter == "stats"
    # a true tie goes to the first name, whatever order the registry lists them in
    assert router.route("mean").adapter == "alpha"
    assert Router({"beta": ["x"], "alpha": ["x"]}).route("x").adapter == "alpha"


def test_no_match_is_the_base():
    route = Router({"math": ["add"]}).route("tell me a story")
    assert route.adapter is None and route.scores == ()
    assert route.reason() == "no adapter keyword in the text"


def test_from_registry_only_offers_available_adapters():
    registry = Registry(Path("r.yaml"), {"math": full_entry(),
                                         "code": full_entry(router_keywords=["add"])})
    assert Router.from_registry(registry).route("add it").adapter == "code"
    assert Router.from_registry(registry, ["math"]).route("add it").adapter == "math"
    assert Router.from_registry(registry, []).route("add it").adapter is None


def _adapters_with_registry(root: Path, base=None) -> None:
    write_entry(root / "registry.yaml", "math", full_entry())
    write_entry(root / "registry.yaml", "code", full_entry(router_keywords=["python"]))
    if base is not None:
        make_adapter(root / "math", base)


def test_cli_route(real_base, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _adapters_with_registry(Path("adapters"), real_base)
    runner = CliRunner()
    result = runner.invoke(cli, ["route", "How many apples if I add 3?"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "math\n" and "matched 'add', 'how many'" in result.stderr
    result = runner.invoke(cli, ["route", "Fix my python script"])
    assert result.stdout == "base\n"  # code is in the registry but not trained here
    result = runner.invoke(cli, ["route", "Fix my python script", "--untrained"])
    assert result.stdout == "code\n"


def test_cli_route_reports_a_broken_registry(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("adapters").mkdir()
    Path("adapters/registry.yaml").write_text("math:\n  lora_rank: -1\n")
    result = CliRunner().invoke(cli, ["route", "add"])
    assert result.exit_code == 2 and "registry.yaml:2:" in result.output


def test_query_auto_routes_with_the_registry(real_base, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _adapters_with_registry(Path("adapters"), real_base)
    runner = CliRunner()
    routed = runner.invoke(cli, ["query", "How many is 2 add 3?", "--auto", "--max-tokens", "8"])
    assert routed.exit_code == 0, routed.output
    assert "[route: math, matched 'add', 'how many']" in routed.stderr
    assert "[math:" in routed.stderr
    plain = runner.invoke(cli, ["query", "Tell me a story", "--auto", "--max-tokens", "8"])
    assert "[route: base, no adapter keyword" in plain.stderr and "[base:" in plain.stderr
    clash = runner.invoke(cli, ["query", "x", "--auto", "--adapter", "math"])
    assert clash.exit_code == 2 and "--auto picks the adapter itself" in clash.output


def test_classifier_router_learns_the_domains_and_a_none_class():
    from locollm.runtime.classifier import ClassifierRouter

    texts = [f"Tom has {i} apples and gets {i + 3} more. How many now?" for i in range(30)]
    texts += [f"Convert {i} km to miles." for i in range(30)]
    texts += ["What is the capital of France?", "Name an animal.", "Tell me a joke.",
              "What colour is the sky?", "Who wrote Hamlet?"] * 6
    labels = ["math"] * 30 + ["units"] * 30 + ["none"] * 30
    router = ClassifierRouter(texts, labels)
    assert router.adapters == ["math", "units"]
    assert router.route("Ann has 5 pears and gets 2 more. How many now?").adapter == "math"
    assert router.route("Convert 12 km to miles please").adapter == "units"
    route = router.route("Who painted the Mona Lisa?")
    assert route.adapter is None and route.reason().startswith("classifier: none")


def test_classifier_beats_keywords_on_the_shipped_adapters():
    """The number the default router is picked by (held-out folds for the classifier)."""
    from locollm.adapter.registry import load_registry
    from locollm.runtime.classifier import compare_routers

    repo = Path(__file__).resolve().parents[1] / "adapters"
    scores = {s.router: s for s in compare_routers({"math": repo / "math"},
                                                   load_registry(repo / "registry.yaml"))}
    classifier, keywords = scores["classifier"], scores["keywords"]
    assert classifier.ood >= keywords.ood and classifier.benchmark >= keywords.benchmark
    assert classifier.benchmark + classifier.ood > keywords.benchmark + keywords.ood
    assert classifier.benchmark >= 0.95 and classifier.n_ood == 40


def test_replay_examples_teach_the_classifier_the_base_class(tmp_path):
    """General questions the base answered (source: replay) are not the adapter's domain."""
    from locollm.runtime.classifier import NONE, RouterData

    folder = tmp_path / "math"
    (folder / "training").mkdir(parents=True)
    rows = [{"instruction": "Solve.", "input": "Ann has 5 pears and gets 2 more.", "output": "7"},
            {"instruction": "Who wrote Hamlet?", "input": "", "output": "Shakespeare",
             "source": "replay"}]
    (folder / "training" / "dataset.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows))
    data = RouterData.from_folders({"math": folder})
    assert data.training == [("Ann has 5 pears and gets 2 more.", "math"),
                             ("Who wrote Hamlet?", NONE)]


def test_cli_route_with_the_classifier(monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    runner = CliRunner()
    plain = runner.invoke(cli, ["route", "How many legs does a spider have?"])
    assert plain.stdout == "base\n" and "classifier: none" in plain.stderr
    keywords = runner.invoke(cli, ["route", "How many legs does a spider have?",
                                   "--router", "keywords"])
    assert keywords.exit_code == 0
    word = runner.invoke(cli, ["route", "Sam had 12 marbles and lost 5. How many are left?"])
    assert word.stdout == "math\n"
    clash = runner.invoke(cli, ["route", "x", "--untrained", "--router", "classifier"])
    assert clash.exit_code == 2
