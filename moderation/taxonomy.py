"""The category taxonomy: OpenAI's 13 moderation categories plus text-to-image specific ones.

Every score, threshold and reason in fluxwarden is keyed by a `Category` value (or, for
auxiliary evidence that is not itself a category, a `Signal`). Keeping both as string enums
means YAML, JSON and the OpenAI wire format all use the same spelling.
"""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    HARASSMENT = "harassment"
    HARASSMENT_THREATENING = "harassment/threatening"
    HATE = "hate"
    HATE_THREATENING = "hate/threatening"
    ILLICIT = "illicit"
    ILLICIT_VIOLENT = "illicit/violent"
    SELF_HARM = "self-harm"
    SELF_HARM_INTENT = "self-harm/intent"
    SELF_HARM_INSTRUCTIONS = "self-harm/instructions"
    SEXUAL = "sexual"
    SEXUAL_MINORS = "sexual/minors"
    VIOLENCE = "violence"
    VIOLENCE_GRAPHIC = "violence/graphic"
    # Text-to-image specific.
    PUBLIC_FIGURE = "public-figure"
    LIVING_ARTIST_STYLE = "living-artist-style"


class Signal(StrEnum):
    """Evidence that policies and the engine combine, but that is not a category by itself."""

    MINORS = "minors"  # a minor is mentioned or depicted (child, teen, "12 year old", ...)
    # The prompt's sexual score with its minor cues read as adults ("explicit photo of a 12 year
    # old" scored as "explicit photo of a person"): models score sexual low once a child is named.
    SEXUAL_IF_ADULT = "sexual-if-adult"
    # The prompt is in none of the policy's supported languages (the classifiers read English).
    OTHER_LANGUAGE = "other-language"
    SUGGESTIVE = "suggestive"  # covered or partial nudity in an image
    FACE = "face"  # a face is present in an image


OPENAI_CATEGORIES: tuple[Category, ...] = (
    Category.HARASSMENT,
    Category.HARASSMENT_THREATENING,
    Category.HATE,
    Category.HATE_THREATENING,
    Category.ILLICIT,
    Category.ILLICIT_VIOLENT,
    Category.SELF_HARM,
    Category.SELF_HARM_INTENT,
    Category.SELF_HARM_INSTRUCTIONS,
    Category.SEXUAL,
    Category.SEXUAL_MINORS,
    Category.VIOLENCE,
    Category.VIOLENCE_GRAPHIC,
)
T2I_CATEGORIES: tuple[Category, ...] = (Category.PUBLIC_FIGURE, Category.LIVING_ARTIST_STYLE)
ALL_CATEGORIES: tuple[Category, ...] = OPENAI_CATEGORIES + T2I_CATEGORIES

# Categories no policy can lower, disable or turn into anything but a block.
HARD_BLOCK: frozenset[Category] = frozenset({Category.SEXUAL_MINORS})
# The most lenient block threshold a policy may set for a hard-block category.
HARD_BLOCK_MAX_THRESHOLD = 0.5

# Sub-categories imply their parent when a source only labels the specific one.
PARENT: dict[Category, Category] = {
    Category.HARASSMENT_THREATENING: Category.HARASSMENT,
    Category.HATE_THREATENING: Category.HATE,
    Category.ILLICIT_VIOLENT: Category.ILLICIT,
    Category.SELF_HARM_INTENT: Category.SELF_HARM,
    Category.SELF_HARM_INSTRUCTIONS: Category.SELF_HARM,
    Category.SEXUAL_MINORS: Category.SEXUAL,
    Category.VIOLENCE_GRAPHIC: Category.VIOLENCE,
}

LABELS: frozenset[str] = frozenset(c.value for c in Category) | frozenset(s.value for s in Signal)


class UnknownCategoryError(ValueError):
    """Raised for a category name that is not in the taxonomy; lists the valid names."""

    def __init__(self, name: str) -> None:
        valid = ", ".join(c.value for c in ALL_CATEGORIES)
        super().__init__(f"unknown category {name!r}; valid categories: {valid}")
        self.name = name


def parse_category(name: str) -> Category:
    try:
        return Category(name.strip().lower())
    except ValueError:
        raise UnknownCategoryError(name) from None
