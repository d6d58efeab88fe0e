"""Typed yes/no questions from a free-form prompt, for real models (the shapes world has its own grammar).

Where a prompt names objects the way GenEval's prompts do -- "a photo of two dogs and a red car",
"a cat to the left of a bench", a sign that says "OPEN" -- each object, count, color, relation and
quoted text becomes a question; objects, counts, colors and relations also get a typed check, which
a detector decides from boxes. Anything the parser does not recognise is left out: a wrong typed
question would be worse than none, and the agent can always give its own requirements.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import cast

from gems_mcp.checks import AtLeast, Check, Exactly, Relation, RelationCheck, Target
from gems_mcp.inputs import MAX_QUESTION_CHARS
from gems_mcp.types import Requirement, RequirementKind

COLORS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "gray", "grey")
NUMBERS = {"a": 1, "an": 1, "one": 1, "single": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
           "eight": 8, "nine": 9, "ten": 10, "a pair of": 2, "a couple of": 2}
# Longest first, so "to the left of" wins over "left of".
RELATIONS = {
    "to the left of": "left", "on the left of": "left", "left of": "left",
    "to the right of": "right", "on the right of": "right", "right of": "right",
    "on top of": "above", "above": "above", "over": "above",
    "underneath": "below", "beneath": "below", "below": "below", "under": "below",
}
PHRASES = {"left": "to the left of", "right": "to the right of", "above": "above", "below": "below"}
_FRAMES = re.compile(
    r"^(?:an?\s+)?(?:(?:high[- ]quality|realistic|detailed|simple|cartoon|close-up)\s+)*"
    r"(?:photo|photograph|picture|image|painting|drawing|illustration|render|rendering|sketch)\s+of\s+", re.IGNORECASE
)
_QUOTED = re.compile(r"\"([^\"]{1,60})\"|“([^”]{1,60})”|'([^']{2,60})'")
_STOP = {"in", "on", "at", "with", "of", "the", "is", "are", "and", "or", "near", "by", "next", "from", "that", "which",
         "while", "for", "to", "into", "its", "their", "his", "her", "some", "sitting", "standing", "lying", "says",
         "saying", "reads", "reading", "holding", "wearing"}
_STYLES = {"painting", "photo", "photograph", "illustration", "render", "rendering", "sketch", "drawing", "style",
           "art", "artwork", "4k", "8k", "hd", "realistic", "photorealistic", "cinematic", "lighting", "background",
           "portrait", "closeup", "close-up", "watercolor", "anime", "cartoon", "digital", "scene", "view"}
_IRREGULAR = {"people": "person", "men": "man", "women": "woman", "children": "child", "mice": "mouse",
              "geese": "goose", "teeth": "tooth", "feet": "foot", "sheep": "sheep", "fish": "fish", "deer": "deer",
              "knives": "knife", "leaves": "leaf", "wolves": "wolf", "scissors": "scissors", "skis": "ski",
              "glasses": "glasses"}


@dataclass(frozen=True)
class Group:
    """Objects a prompt names: a noun, how many, and a color when given."""

    noun: str
    count: int
    color: str | None = None
    whole: bool = field(default=True, compare=False)
    """False when words after the noun were dropped ("a cat sitting on a sofa": the sofa and the sitting)."""

    def target(self) -> Target:
        return Target(object=self.noun, color=self.color)

    def describe(self, with_count: bool = True) -> str:
        name = f"{self.color} {self.noun}" if self.color else self.noun
        if not with_count or self.count == 1:
            return f"{'an' if name[0] in 'aeiou' else 'a'} {name}" if with_count else name
        return f"{_word(self.count)} {plural(name)}"


def singular(word: str) -> str:
    """'dogs' -> 'dog', 'boxes' -> 'box', 'people' -> 'person'; words that are not plurals stay."""
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def plural(name: str) -> str:
    *head, last = name.split(" ")
    reverse = {v: k for k, v in _IRREGULAR.items()}
    if last in reverse:
        last = reverse[last]
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        last = last[:-1] + "ies"
    elif last.endswith(("ch", "sh", "x", "s", "z")):
        last += "es"
    else:
        last += "s"
    return " ".join([*head, last])


def _word(n: int) -> str:
    return next((w for w, v in NUMBERS.items() if v == n and w not in ("a", "an", "single")), str(n))


def parse_group(text: str, need_article: bool = True) -> Group | None:
    """'two red cars' -> Group('car', 2, 'red'); None when the words are not article-or-count [color] noun [noun]."""
    words = re.sub(r"[^a-z0-9' -]", " ", text.lower()).split()
    determined = words[:1] == ["the"]  # objects come with an article or a number; "ultra detailed" does not
    if determined:
        words = words[1:]
    count = 1
    for phrase in sorted(NUMBERS, key=len, reverse=True):
        if words[: len(phrase.split())] == phrase.split():
            count, words, determined = NUMBERS[phrase], words[len(phrase.split()):], True
            break
    else:
        if words and words[0].isdigit() and 0 < int(words[0]) <= 20:
            count, words, determined = int(words[0]), words[1:], True
    if need_article and not determined:
        return None
    color = None
    if words and words[0] in COLORS:
        color, words = ("gray" if words[0] == "grey" else words[0]), words[1:]
    # The noun ends where a preposition or verb starts: "a cat on a sofa" is about the cat.
    noun_words: list[str] = []
    for word in words:
        if word in _STOP or word in COLORS or word in NUMBERS:
            break
        noun_words.append(word)
    if any(w in _STYLES for w in noun_words):
        return None  # "oil painting", "4k photo": how it looks, not what is in it
    verb = next((i for i, w in enumerate(noun_words) if i and w.endswith("ing")), None)
    noun_words = noun_words[:verb]  # "an astronaut riding": the astronaut
    if not 1 <= len(noun_words) <= 2 or not all(w.isalpha() for w in noun_words):
        return None
    whole = len(noun_words) == len(words)
    noun_words[-1] = singular(noun_words[-1]) if count > 1 or noun_words[-1] in _IRREGULAR else noun_words[-1]
    return Group(" ".join(noun_words), count, color, whole)


def _split_relation(text: str) -> tuple[str, str, str] | None:
    for phrase in sorted(RELATIONS, key=len, reverse=True):
        match = re.search(rf"\b{phrase}\b", text)
        if match:
            return text[: match.start()].strip(" ,"), RELATIONS[phrase], text[match.end():].strip(" ,")
    return None


def _groups(text: str) -> list[Group | None]:
    return [parse_group(part) for part in re.split(r",\s*(?:and\s+)?|\s+and\s+", text) if part.strip()]


def prompt_questions(prompt: str) -> list[Requirement]:
    """Typed questions for what the prompt names; [] when it names nothing the parser recognises."""
    questions: list[tuple[str, RequirementKind, Check | None]] = []
    for match in _QUOTED.finditer(prompt):
        quoted = next(g for g in match.groups() if g)
        questions.append((f'Does the image show the text "{quoted}"?', "text", None))
    text = _FRAMES.sub("", _QUOTED.sub(" ", prompt).strip().rstrip(".").lower()).strip()
    relation = _split_relation(text)
    a = b = None
    if relation:
        # "two dogs and a red car left of a bench": the relation joins the groups either side of it.
        left, right = _groups(relation[0]), _groups(relation[2])
        groups = [g for g in left + right if g is not None]
        a, b = (left[-1] if left else None), (right[0] if right else None)
    else:
        groups = [g for g in _groups(text) if g is not None]
    for group in dict.fromkeys(groups):
        questions += _group_questions(group)
    if relation and a is not None and b is not None and a.noun != b.noun:
        text_q = f"Is the {a.describe(False)} {PHRASES[relation[1]]} the {b.describe(False)}?"
        questions.append((text_q, "position", RelationCheck(relation=cast(Relation, relation[1]), a=a.target(), b=b.target())))
    parts = (_groups(relation[0]) + _groups(relation[2])) if relation else _groups(text)
    whole = f'Does the image match the description "{prompt.strip()}"?'
    if not all(g is not None and g.whole for g in parts) and len(whole) <= MAX_QUESTION_CHARS:
        # What the parser cannot type (actions, scenes, styles: "riding a horse") is still asked, as one free-text
        # question: of the VLM, or of the agent where only a detector judges.
        questions.append((whole, "other", None))
    return [Requirement(id="", question=q, kind=k, source="prompt", check=c) for q, k, c in questions]


def _group_questions(group: Group) -> list[tuple[str, RequirementKind, Check | None]]:
    noun = group.noun
    article = "an" if noun[0] in "aeiou" else "a"
    if group.count > 1:
        found: list[tuple[str, RequirementKind, Check | None]] = [
            (f"Are there exactly {group.describe()}?", "count", Exactly(object=noun, color=group.color, n=group.count))
        ]
        return found
    found = [(f"Is there {article} {noun}?", "object", AtLeast(object=noun))]
    if group.color:
        found.append((f"Is there {group.describe()}?", "color", AtLeast(object=noun, color=group.color)))
    return found


_TAIL = re.compile(r"\s+(?:in|on)\s+(?:the\s+)?(?:image|picture|photo|scene)$|\s+visible$")


def question_check(question: str) -> tuple[RequirementKind, Check] | None:
    """The typed form of a yes/no question written the way derived ones are ("Are there exactly two dogs?",
    "Is the cat left of the bench?", "Are the three green triangles to the left of the white square?",
    "Does the image show a red car?"); None for anything else."""
    text = _TAIL.sub("", question.strip().lower().rstrip("?").strip())
    if match := re.fullmatch(r"(?:is|are) (?!there\b)(?:all |both |each of )?(?:the )?(.+)", text):
        relation = _split_relation(match.group(1))
        if relation:
            a, b = (_whole_group(side, article=False) or _whole_group(side.removeprefix("the "), article=False)
                    for side in (relation[0], relation[2]))
            if a and b and a.target() != b.target():
                every = a.count > 1 or b.count > 1  # "are the three triangles left of ...": each of them
                return "position", RelationCheck(relation=cast(Relation, relation[1]), a=a.target(), b=b.target(), every=every)
            return None
    if match := re.fullmatch(r"(?:is there|are there|does the image (?:show|contain|have)) (at least |exactly )?(.+)", text):
        group = _whole_group(match.group(2))
        if group is None:
            return None  # "a dog playing with a ball" says more than a detector can check
        if match.group(1) == "at least " or group.count == 1:
            kind: RequirementKind = "count" if group.count > 1 else ("color" if group.color else "object")
            return kind, AtLeast(object=group.noun, color=group.color, n=group.count)
        return "count", Exactly(object=group.noun, color=group.color, n=group.count)
    return None


def _whole_group(text: str, article: bool = True) -> Group | None:
    """A group only when the words are nothing but [count] [color] noun: "a red car", "two dogs", "red car"."""
    count = r"(?:a|an|one|two|three|four|five|six|seven|eight|nine|ten|\d{1,2})"
    head = rf"{count}\s+" if article else rf"(?:(?:the|{count})\s+)?"
    colors = "|".join(COLORS)
    if not re.fullmatch(rf"{head}(?:(?:{colors})\s+)?[a-z]+(?:\s[a-z]+)?", text.strip()):
        return None
    group = parse_group(text, need_article=False)
    return group if group is not None and len(text.split()) == len(group.noun.split()) + (group.color is not None) + (
        1 if re.match(rf"(?:the|{count})\s", text.strip()) else 0) else None
