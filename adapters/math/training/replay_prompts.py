"""Writes replay_prompts.jsonl: general questions (the kinds in eval/ood.jsonl, none of its
questions) for `locollm data replay` to answer with the base model.

Their answers, mixed into the training set, keep the adapter from drifting on what the base
already does (the out-of-domain drop). tests/test_math_data.py checks that no prompt here is a
near-duplicate of an eval/ood.jsonl question.

Run: python adapters/math/training/replay_prompts.py
"""

from __future__ import annotations

import json
from pathlib import Path

CAPITALS = ["Peru", "Portugal", "Norway", "Sweden", "Kenya", "Mexico", "Brazil", "Chile",
            "Ireland", "Poland", "Austria", "Turkey", "India", "China", "Cuba", "Finland",
            "Denmark", "Argentina", "Thailand", "Vietnam", "Hungary", "Belgium", "Scotland",
            "Australia", "Morocco"]
CAPITAL_FRAMES = ["Which city is the capital of {}?", "Name the capital city of {}.",
                  "What city is {}'s capital?"]
OPPOSITES = ["tall", "light", "early", "full", "hard", "rich", "loud", "young", "near", "thick",
             "strong", "clean", "empty", "push", "win", "buy", "inside", "above", "sweet",
             "quiet", "long", "cheap", "soft", "begin", "true"]
OPPOSITE_FRAMES = ["Give the opposite of the word {}.", "What word means the opposite of {}?",
                   "Name a word that is the opposite of {}."]
COUNTING = [
    "How many legs does an insect have?", "How many days are in a leap year?",
    "How many seconds are in one minute?", "How many sides does a hexagon have?",
    "How many planets are in the solar system?", "How many continents are there?",
    "How many players are on a soccer team on the field?", "How many strings does a violin have?",
    "How many eyes do most people have?", "How many corners does a rectangle have?",
    "How many weeks are in a year?", "How many toes are on one human foot?",
    "How many colors are in a rainbow?", "How many sides does an octagon have?",
    "How many legs does a cow have?", "How many days are in June?",
    "How many zeros are in one thousand?", "How many wings does a bird have?",
    "How many vowels are in the English alphabet?", "How many arms does an octopus have?",
    "How many hearts does a human have?", "How many seasons are in a year?",
    "How many sides does a pentagon have?", "How many cents are in a dollar?",
    "How many years are in a century?", "How many years are in a decade?",
    "How many days are in February in most years?", "How many fingers are on one hand?",
    "How many wheels does a tricycle have?", "How many letters are in the word dog?",
    "How many letters are in the word house?", "How many minutes are in half an hour?",
    "How many eggs are in a dozen?", "How many humps does a camel with one hump have?",
    "How many keys are on a standard piano?", "How many sides does a cube have?",
]
GENERAL = [
    "What color is a banana?", "What color is snow?", "What color is a ripe tomato?",
    "What color are most leaves in summer?", "What color do you get by mixing red and white?",
    "Which animal barks?", "Which animal says meow?", "Which animal is known as the king of "
    "the jungle?", "Which bird cannot fly and lives in Antarctica?", "What animal has a trunk?",
    "What do cows drink?", "What do caterpillars turn into?", "What is the baby of a dog "
    "called?", "What is the baby of a cat called?", "What is the baby of a sheep called?",
    "What is water made into when it boils?", "What gas do people breathe in to live?",
    "What is the closest star to Earth?", "Which planet is known as the red planet?",
    "What is the name of Earth's natural satellite?", "What is the plural of child?",
    "What is the plural of foot?", "What is the plural of goose?", "What is the past tense of "
    "run?", "What is the past tense of eat?", "Which day comes before Sunday?",
    "Which month comes after March?", "Which month comes before December?",
    "What is the last letter of the English alphabet?", "Which season comes after winter?",
    "What is the tallest animal in the world?", "What is the largest ocean on Earth?",
    "What is the largest mammal?", "Which fruit keeps the doctor away?",
    "What do you call a person who fixes teeth?", "What do you call a person who flies "
    "planes?", "What instrument has black and white keys?", "What do spiders spin?",
    "What is the main ingredient in bread?", "What falls from clouds when it rains?",
    "Where do fish live?", "What do plants need from the sun?", "What shape is a ball?",
    "What tool do you use to cut paper?", "What do you wear on your feet?",
    "Which sense do you use your nose for?", "What is the opposite direction of north?",
    "What is the freezing point of water in Celsius?", "Who wrote Romeo and Juliet?",
    "What language is spoken in Brazil?", "What is the currency of Japan?",
    "What is the hardest natural substance?", "Which metal is liquid at room temperature?",
    "What do you call a baby frog?", "What is the color of an emerald?",
    "Which animal is famous for its black and white stripes?", "What do pandas mostly eat?",
    "What is the capital letter of b?", "Translate hello into Spanish.",
    "Give a synonym for happy.", "Give a synonym for big.", "Spell the word cat backwards.",
    "Name a fruit that is yellow.", "Name a vegetable that is orange.",
    "Name an animal that lives in the desert.", "Name a sport played with a racket.",
    "Complete the sentence: The early bird catches the", "What rhymes with cat?",
    "What rhymes with moon?", "Is the sun hot or cold?", "Is ice hot or cold?",
    "Do fish have feathers?", "Can penguins fly?", "Is a tomato a fruit or a vegetable?",
    "What is the chemical symbol for water?", "What is the chemical symbol for gold?",
    "What organ pumps blood through the body?", "What do bees collect from flowers?",
    "Which is heavier, a kilogram of feathers or a kilogram of iron?",
    "Write a short greeting for a friend.", "Describe the color of the sky at night.",
    "What is the first day of the week in the United States?", "Who painted the Mona Lisa?",
    "What is the longest river in Africa?", "On which continent is Egypt?",
    "In which country is the Eiffel Tower?", "What is the name of our galaxy?",
]


def rows() -> list[dict]:
    out = []
    for i, country in enumerate(CAPITALS):
        out.append(("capital", CAPITAL_FRAMES[i % len(CAPITAL_FRAMES)].format(country)))
    for i, word in enumerate(OPPOSITES):
        out.append(("opposite", OPPOSITE_FRAMES[i % len(OPPOSITE_FRAMES)].format(word)))
    out += [("counting", q) for q in COUNTING] + [("general", q) for q in GENERAL]
    return [{"instruction": q, "input": "", "category": c} for c, q in out]


def main() -> None:
    path = Path(__file__).resolve().parent / "replay_prompts.jsonl"
    data = rows()
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in data), encoding="utf-8")
    tmp.replace(path)
    print(f"wrote {len(data)} prompts to {path}")


if __name__ == "__main__":
    main()
