"""Word lists: shipped as package data, parsed once, edited by policies without weakening the hard block."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from moderation.lists import LIST_NAMES, ListError, Term, WordLists, file_name, load_lists, shipped_lists
from moderation.taxonomy import OPENAI_CATEGORIES


def _texts(lists: WordLists, name: str) -> set[str]:
    return {t.text for t in lists[name]}


def test_every_list_file_ships_as_package_data() -> None:
    """Every list name has its file under the `policies` package (so an installed wheel carries it)."""
    folder = resources.files("policies").joinpath("lists")
    for name in LIST_NAMES:
        assert folder.joinpath(file_name(name)).is_file(), name


def test_list_names_cover_the_openai_categories_and_the_auxiliary_lists() -> None:
    """One term list per OpenAI category, plus allow, minors and the three name lists."""
    expected = {c.value for c in OPENAI_CATEGORIES} | {
        "allow", "minors", "public-figures", "living-artists", "dead-artists",
    }  # fmt: skip
    assert set(LIST_NAMES) == expected


def test_file_names_replace_slashes_with_double_underscores() -> None:
    """`sexual/minors` lives in `sexual__minors.txt`, name lists use underscores."""
    assert file_name("sexual/minors") == "sexual__minors.txt"
    assert file_name("violence/graphic") == "violence__graphic.txt"
    assert file_name("self-harm") == "self-harm.txt"
    assert file_name("public-figures") == "public_figures.txt"


@pytest.mark.parametrize(
    ("name", "minimum"),
    [
        ("public-figures", 300),
        ("living-artists", 100),
        ("dead-artists", 100),
        ("allow", 100),
        ("sexual", 150),
        ("sexual/minors", 50),
        ("minors", 40),
        *[(c.value, 20) for c in OPENAI_CATEGORIES],
    ],
)
def test_shipped_lists_have_the_promised_sizes(name: str, minimum: int) -> None:
    """Each shipped list holds at least the number of entries the docs promise."""
    assert len(shipped_lists()[name]) >= minimum


def test_shipped_lists_are_parsed_once_per_process() -> None:
    """Loading without edits returns the same cached object."""
    assert load_lists() is load_lists()


def test_terms_carry_weights_and_their_source_line() -> None:
    """A weighted line keeps its weight; every term knows its file and line."""
    sperm = next(t for t in shipped_lists()["sexual"] if t.text == "sperm")
    assert sperm.weight < 0.5
    assert sperm.source.startswith("policies/lists/sexual.txt:")


def test_name_entries_carry_aliases() -> None:
    """`Full Name | alias` lines keep the aliases."""
    obama = next(t for t in shipped_lists()["public-figures"] if t.text == "Barack Obama")
    assert "Obama" in obama.aliases


@pytest.mark.parametrize("common", ["swift", "bush", "trump", "musk", "drake", "madonna", "pink", "sting"])
def test_no_name_alias_is_a_bare_common_word(common: str) -> None:
    """Aliases of living people are specific: never a common word or surname on its own."""
    for name in ("public-figures", "living-artists"):
        for term in shipped_lists()[name]:
            assert common not in {a.lower() for a in (term.text, *term.aliases)}, term


def test_no_one_is_both_a_living_and_a_dead_artist() -> None:
    """The living and dead artist lists do not share a name."""
    lists = shipped_lists()
    living = {t.key for t in lists["living-artists"]}
    dead = {t.key for t in lists["dead-artists"]}
    assert not living & dead


def test_add_appends_terms_with_optional_weight() -> None:
    """Policy additions join the list, `term | weight` included."""
    lists = load_lists(add={"sexual": ["zorbleflex | 0.7", "quuxpron"]})
    weights = {t.text: t.weight for t in lists["sexual"]}
    assert weights["zorbleflex"] == 0.7
    assert weights["quuxpron"] == 1.0


def test_add_never_lowers_a_shipped_weight() -> None:
    """Adding a shipped term with a lower weight keeps the shipped (higher) weight."""
    lists = load_lists(add={"sexual": ["porn | 0.1"]})
    assert next(t for t in lists["sexual"] if t.text == "porn").weight == 1.0


def test_remove_takes_a_term_out() -> None:
    """A removed term is gone from the resolved list."""
    lists = load_lists(remove={"violence": ["shoot"]})
    assert "shoot" not in _texts(lists, "violence")
    assert "shoot" in _texts(shipped_lists(), "violence")


def test_remove_then_add_changes_a_weight() -> None:
    """Removing a term and adding it back is how a weight is lowered."""
    lists = load_lists(remove={"violence": ["murder"]}, add={"violence": ["murder | 0.2"]})
    assert next(t for t in lists["violence"] if t.text == "murder").weight == 0.2


@pytest.mark.parametrize("protected", ["sexual/minors", "sexual__minors", "minors"])
def test_removing_from_a_hard_block_list_is_refused(protected: str) -> None:
    """Nothing may be removed from the lists that guard the sexual/minors hard block."""
    with pytest.raises(ListError, match="hard block"):
        load_lists(remove={protected: ["jailbait" if "sexual" in protected else "child"]})


def test_adding_to_a_hard_block_list_is_allowed() -> None:
    """Operators may strengthen the hard block."""
    lists = load_lists(add={"sexual/minors": ["zorblechild"]})
    assert "zorblechild" in _texts(lists, "sexual/minors")


def test_unknown_list_name_is_a_clear_error() -> None:
    """A typo in a list name names the valid lists."""
    with pytest.raises(ListError, match=r"unknown list 'sexy'.*sexual/minors"):
        load_lists(add={"sexy": ["x"]})


def test_removing_an_absent_term_is_an_error() -> None:
    """A removal that matches nothing is reported, so a typo cannot pass for a change."""
    with pytest.raises(ListError, match="not in the list"):
        load_lists(remove={"violence": ["zorblekill"]})


def test_bad_weight_reports_file_and_line(tmp_path: Path) -> None:
    """A weight that is not a number in (0, 1] is an error that names file:line."""
    path = tmp_path / "extra.txt"
    path.write_text("# comment\n\nfine term | 0.5\nbad term | heavy\n", encoding="utf-8")
    with pytest.raises(ListError, match=rf"{path}:4: weight 'heavy' is not a number"):
        load_lists(files={"sexual": path})


@pytest.mark.parametrize("weight", ["0", "1.5", "-0.2", "nan"])
def test_out_of_range_weight_is_refused(weight: str) -> None:
    """Weights outside (0, 1] are refused."""
    with pytest.raises(ListError, match="weight"):
        load_lists(add={"sexual": [f"zorble | {weight}"]})


def test_missing_list_file_names_its_path(tmp_path: Path) -> None:
    """An unreadable list file is an error that names the path."""
    missing = tmp_path / "nope.txt"
    with pytest.raises(ListError, match=str(missing)):
        load_lists(files={"hate": missing})


def test_list_file_entries_are_appended(tmp_path: Path) -> None:
    """A policy's list file adds to the shipped list; comments and blank lines are ignored."""
    path = tmp_path / "mine.txt"
    path.write_text("# my terms\nzorblewhack | 0.6\n\n  quuxbash  \n", encoding="utf-8")
    lists = load_lists(files={"violence": path})
    added = [t for t in lists["violence"] if t.text in {"zorblewhack", "quuxbash"}]
    assert {t.text: t.weight for t in added} == {"zorblewhack": 0.6, "quuxbash": 1.0}
    assert added[0].source == f"{path}:2"
    assert len(lists["violence"]) == len(shipped_lists()["violence"]) + 2


def test_hash_changes_when_a_list_changes() -> None:
    """The resolved lists' sha256 differs when any term changes, and is stable otherwise."""
    base = shipped_lists().sha256
    assert load_lists(add={"allow": ["zorble garden"]}).sha256 != base
    assert load_lists(add={"allow": ["zorble garden"]}).sha256 == load_lists(add={"allow": ["zorble garden"]}).sha256


def test_word_lists_is_a_read_only_mapping() -> None:
    """WordLists maps every list name to a tuple of Terms."""
    lists = shipped_lists()
    assert set(lists) == set(LIST_NAMES)
    assert all(isinstance(t, Term) for t in lists["sexual"])
    assert isinstance(lists["sexual"], tuple)


def test_unknown_name_is_not_in_the_mapping() -> None:
    """Membership tests and .get() behave like a mapping for names that are not lists."""
    lists = shipped_lists()
    assert "bogus" not in lists
    assert lists.get("bogus") is None
    assert "sexual__minors" in lists
