"""The normaliser undoes evasion tricks; every form is kept so classifiers see all of them."""

from __future__ import annotations

import pytest

from moderation.normalise import basic, fold, normalise


@pytest.mark.parametrize(
    ("evasive", "folded"),
    [
        ("p0rn", "porn"),  # leetspeak digits
        ("s3x", "sex"),
        ("n@ked", "naked"),  # leetspeak symbols
        ("$lut", "slut"),
        ("рorn", "porn"),  # Cyrillic er
        ("nаkеd", "naked"),  # Cyrillic a and ie
        ("ｎｕｄｅ", "nude"),  # fullwidth (NFKC)
        ("𝐧𝐮𝐝𝐞", "nude"),  # mathematical bold
        ("n\u200bu\u200bd\u200be", "nude"),  # zero-width spaces
        ("nu\u202ede", "nude"),  # bidi override
        ("n\u00adude", "nude"),  # soft hyphen
        ("n u d e", "nude"),  # spaced letters
        ("n.u.d.e", "nude"),
        ("n-u-d-e", "nude"),
        ("nüdé", "nude"),  # accents
        ("NUDE", "nude"),  # case
        ("nuuuuude", "nuude"),  # stretched letters shrink to two; matchers allow repeats
        ("ɴᴜᴅᴇ", "nude"),  # small capitals (not in the confusables data; named after Latin letters)
        ("🅽🆄🅳🅴", "nude"),  # negative squared letters
        ("🇳🇺🇩🇪", "nude"),  # regional indicators
        ("n0 clothes", "no clothes"),  # a zero beside a single letter
        ("n|_|de", "nude"),  # letters drawn with several symbols
        ("|\\|ude", "nude"),
        ("p()rn", "porn"),
        ("|<ill", "kill"),
        ("namow edun a", "a nude woman"),  # typed backwards
    ],
)
def test_fold_undoes_evasion(evasive: str, folded: str) -> None:
    """Each evasion trick folds to the plain spelling."""
    assert fold(evasive) == folded


@pytest.mark.parametrize(
    ("evasive", "words"),
    [
        ("t a y l o r  s w i f t  n a k e d", "taylor swift naked"),  # wider gaps between words
        ("T a y l o r   S w i f t", "taylor swift"),
        ("k i l l a l l t h e m", "kill all them"),  # one gap everywhere: split by vocabulary
        ("n.a.k.e.d.w.o.m.a.n", "naked woman"),
    ],
)
def test_fold_recovers_words_from_a_spaced_sentence(evasive: str, words: str) -> None:
    """A whole spaced-out sentence must not fold into one unreadable word that no list or model knows."""
    assert words in fold(evasive)


def test_fold_keeps_the_joined_run_beside_its_split() -> None:
    """An operator's term that is no vocabulary word still matches once its letters are joined."""
    assert fold("a z o r b l e w h a c k scene").startswith("a zorblewhack ")


@pytest.mark.parametrize(
    ("evasive", "words"),
    [
        ("pǝq ɐ uo uɐɯoʍ ǝpnu ɐ", "a nude woman on a bed"),  # a half-turn: right to left
        ("ɐ unpǝ ʍoɯɐu", "a nude woman"),  # glyphs swapped, left to right
        ("a photo of uɐɯoʍ pǝʞɐu ɐ on a bed", "a photo of a naked woman on a bed"),  # a turned run inside
        ("ʎɐpɥʇɹᴉq ʎddɐH", "happy birthday"),
        ("(ɥʇɐǝp oʇ ʎpoq ɐ ƃuᴉqqɐʇs)", "stabbing a body to death)"),  # brackets turn too
    ],
)
def test_fold_turns_upside_down_text_back(evasive: str, words: str) -> None:
    """Upside-down text reads as garbage to lists and models until it is turned back."""
    assert words in fold(evasive)


@pytest.mark.parametrize(
    "text",
    ["¡hola! ¿que tal?", "kadın ılık su", "the sound ɐ in ipa", "a nod to the sun", "bold pun"],
)
def test_fold_leaves_upright_text_with_turned_letters_alone(text: str) -> None:
    """Inverted punctuation, Turkish dotless i, one IPA symbol or words spelled only with
    letters that turn into letters (b/q, d/p, n/u) do not mark a run as upside down."""
    assert fold(text) == basic(text).replace("ı", "i")


@pytest.mark.parametrize(
    "text",
    [
        "un chat qui dort sur un canape",  # another language: few vocabulary words either way
        "#nofilter #instagood #ootd",  # tags
        "xi jinping and kim jong un",  # names
        "a 3d render in 4k, f1.8",  # digits beside letters that are not a lone zero
        "<br><br> a line break",  # "><" is no drawn x
        "stressed desserts",  # reversible words: forwards already reads
    ],
)
def test_fold_reads_text_forwards_unless_backwards_reads_far_better(text: str) -> None:
    assert fold(text) == text


@pytest.mark.parametrize(
    "text",
    ["kill -9 the process", "3 apples and 2 pears", "a 1990s poster", "shooting star", "sheep in a field"],
)
def test_fold_leaves_ordinary_text_readable(text: str) -> None:
    """Digits that stand alone and ordinary double letters are kept."""
    assert fold(text) == text


def test_emoji_are_described_in_words_for_the_models() -> None:
    """MiniLM reads an emoji as an unknown token; the "described" form names it."""
    forms = normalise("a 🔪 in a man's chest with 🩸 everywhere").forms
    assert forms["described"] == "a hocho in a man's chest with drop of blood everywhere"
    assert forms["folded"] == fold("a 🔪 in a man's chest with 🩸 everywhere")  # lists still read what was typed


@pytest.mark.parametrize("text", ["a plain prompt", "a 90° angle, © 2024", "🇺🇸 flag"])
def test_no_described_form_without_pictographs(text: str) -> None:
    """Degree and copyright signs are no pictographs; regional indicators fold as letters instead."""
    assert "described" not in normalise(text).forms


def test_a_joined_emoji_sequence_is_described_by_its_parts() -> None:
    assert normalise("👨\u200d👩\u200d👧 on a picnic").forms["described"] == "man woman girl on a picnic"


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("nkd wmn lying on silk sheets", "naked women lying on silk sheets"),
        ("a mn gttng stbbd", "a mn getting stabbed"),  # two letters fit too many words to guess
        ("NKD LDY", "naked lady"),  # all capitals: shouting, not acronyms
        ("kms aesthetic, bathtub, razor", "kill myself aesthetic, bathtub, razor"),  # algospeak
        ("a guy about to unalive himself", "a guy about to kill himself"),
    ],
)
def test_words_typed_without_vowels_get_a_spelled_form(typed: str, read: str) -> None:
    forms = normalise(typed).forms
    assert forms["spelled"] == read
    assert forms["folded"] == fold(typed)  # the guess is a form of its own; folding is unchanged


@pytest.mark.parametrize(
    "text",
    [
        "a lighthouse at dusk",  # every word a vocabulary word
        "CPR training poster, NYC subway map",  # acronyms typed in capitals
        "lol omg a womn",  # a run that keeps a vowel fits too many words
        "hw to mk it",  # two-letter runs are not read
        "nsfw",  # no common word has these consonants
        "a 5 kms run, 10 kms to go",  # after a number "kms" is a distance
        "how many kms is a marathon, distances in kms",  # and after a word of quantity
    ],
)
def test_no_spelled_form_where_nothing_is_read(text: str) -> None:
    assert "spelled" not in normalise(text).forms


def test_basic_collapses_whitespace_and_case() -> None:
    """The basic form is NFKC, case-folded, single-spaced."""
    assert basic("  A\tWatercolor\n\nOF  a Lighthouse ") == "a watercolor of a lighthouse"


def test_normalise_keeps_original_first() -> None:
    """The original text is always the first form, unchanged."""
    n = normalise("A P0RN image")
    assert next(iter(n.forms)) == "original" and n.forms["original"] == "A P0RN image"
    assert n.forms["folded"] == "a porn image"


def test_unique_forms_drop_duplicates() -> None:
    """A plain lowercase prompt yields one form, not three copies."""
    assert len(normalise("a cat").unique_forms()) == 1


def test_normalise_is_pure() -> None:
    """The same input always gives the same forms."""
    assert normalise("s.e.x") == normalise("s.e.x")


def test_warm_builds_the_cached_tables() -> None:
    """Service start-up calls it (Moderator.preload) so the first prompt does not pay for them."""
    from moderation import normalise as module

    tables = (module._confusables_table, module._word_costs, module._skeletons, module._pictograph)
    for table in tables:
        table.cache_clear()
    module.warm()
    assert all(table.cache_info().currsize == 1 for table in tables)
