"""Build personas/data/bank.jsonl from the hand-written lists in personas/data/attributes.yaml.

No model is involved: attributes are combined with a seeded random.Random and written into one of several
sentence templates, so the same attributes.yaml always gives the same bank, byte for byte.

    python -m personas.build_bank           # rebuild the shipped bank
    python -m personas.build_bank --check   # exit 1 if the shipped bank is stale
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from personas.schema import ATTRIBUTE_FIELDS, EXPERTISE_LEVELS, Persona, dedupe_personas
from pipelines.core.sample import content_hash

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_ATTRIBUTES = DATA_DIR / "attributes.yaml"
DEFAULT_BANK = DATA_DIR / "bank.jsonl"

# Several shapes so the descriptions do not all read alike; a generator prompt that quotes them then
# does not teach the model one fixed opening. Every template uses every attribute exactly once.
TEMPLATES = (
    "{A_occ} {age} in {region} who {want} {goal}; is {exp} and {style}.",
    "Based in {region}, this {occ} {age} {want} {goal}. Is {exp}, and {style}.",
    "{A_occ} from {region}, {age}. {Want} {goal} and is {exp}. {Style}.",
    "{A_occ} (aged {age_band}, {region}) who {want} {goal}. Is {exp} and {style}.",
    "In {region}, {a_occ} {age} {want} {goal}. {Style}, and is {exp}.",
    "{A_occ} {age} living in {region}. Is {exp} and {want} {goal}. {Style}.",
)
WANTS = ("wants to", "hopes to", "is trying to", "needs help to", "would like to", "is looking to")


def load_attributes(path: Path | str = DEFAULT_ATTRIBUTES) -> dict[str, Any]:
    path = Path(path)
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    required = ("seed", "bank_size", "everyday_goal_share", "age_bands", "expertise", "regions",
                "occupations", "goals", "communication_styles")
    missing = [key for key in required if key not in cfg]
    if missing:
        raise ValueError(f"{path}: missing top-level keys {missing}")
    if sorted(cfg["expertise"]) != sorted(EXPERTISE_LEVELS):
        raise ValueError(f"{path}: expertise must list exactly {list(EXPERTISE_LEVELS)}")
    domains = {occ["domain"] for occ in cfg["occupations"]}
    no_goals = sorted(domains - set(cfg["goals"]))
    if no_goals or "everyday" not in cfg["goals"]:
        raise ValueError(f"{path}: goals needs a list for every domain and 'everyday'; missing {no_goals}")
    return cfg


@functools.lru_cache(maxsize=1)
def _default_attributes() -> dict[str, Any]:
    return load_attributes(DEFAULT_ATTRIBUTES)


def vocabulary(cfg: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """Every value each attribute can take in the shipped bank (the denominator for coverage)."""
    cfg = cfg or _default_attributes()
    goals = sorted(_all_goals(cfg))
    return {
        "occupation": sorted(occ["name"] for occ in cfg["occupations"]),
        "domain": sorted({occ["domain"] for occ in cfg["occupations"]}),
        "region": sorted(region["name"] for region in cfg["regions"]),
        "age_band": sorted(cfg["age_bands"]),
        "expertise": list(EXPERTISE_LEVELS),
        "goals": goals,
        "communication_style": sorted(cfg["communication_styles"]),
    }


def _all_goals(cfg: dict[str, Any]) -> set[str]:
    goals = {goal for goal_list in cfg["goals"].values() for goal in goal_list}
    return goals | {goal for occ in cfg["occupations"] for goal in occ.get("goals", [])}


def _article(noun: str) -> str:
    # "an IT technician" but "a university lecturer": the letter rule plus the one exception we use.
    first = noun[:1].lower()
    return "an" if first in "aeiou" and not noun.lower().startswith("uni") else "a"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def describe(attrs: dict[str, str], rng: random.Random, cfg: dict[str, Any] | None = None) -> str:
    """One or two natural sentences from the attributes; a plain labelled form for values we have no
    phrasing for (external sets), so a description is always faithful to the attributes."""
    cfg = cfg or _default_attributes()
    region_names = {region["name"] for region in cfg["regions"]}
    goal_set = _all_goals(cfg)
    known = (
        attrs["age_band"] in cfg["age_bands"]
        and attrs["expertise"] in cfg["expertise"]
        and attrs["communication_style"] in cfg["communication_styles"]
        and attrs["region"] in region_names
        and attrs["goals"] in goal_set
    )
    occ = attrs["occupation"]
    if not known:
        return (
            f"{_cap(_article(occ))} {occ} in {attrs['region']} (age {attrs['age_band']}, "
            f"{attrs['expertise']} level, {attrs['domain']} domain). Goal: {attrs['goals']}. "
            f"Communication style: {attrs['communication_style']}."
        )
    style = cfg["communication_styles"][attrs["communication_style"]]
    want = rng.choice(WANTS)
    fields = {
        "a_occ": f"{_article(occ)} {occ}",
        "A_occ": f"{_cap(_article(occ))} {occ}",
        "occ": occ,
        "region": attrs["region"],
        "age": rng.choice(cfg["age_bands"][attrs["age_band"]]),
        "age_band": attrs["age_band"],
        "exp": rng.choice(cfg["expertise"][attrs["expertise"]]),
        "want": want,
        "Want": _cap(want),
        "goal": attrs["goals"],
        "style": style,
        "Style": _cap(style),
    }
    return rng.choice(TEMPLATES).format(**fields)


def describe_attributes(attrs: dict[str, str]) -> str:
    """Deterministic description for a row that has attributes but no description."""
    return describe(attrs, random.Random(content_hash(attrs)))


class _Deck:
    """Draws values in shuffled passes, so each value comes up about equally often (plain
    random.choice leaves some regions or styles thin for an occupation)."""

    def __init__(self, values: Sequence[str], rng: random.Random) -> None:
        if not values:
            raise ValueError("cannot draw from an empty list")
        self.values, self.rng, self.pile = list(values), rng, []

    def draw(self) -> str:
        if not self.pile:
            self.pile = self.values[:]
            self.rng.shuffle(self.pile)
        return self.pile.pop()


def build_personas(cfg: dict[str, Any]) -> list[Persona]:
    rng = random.Random(cfg["seed"])
    occupations = cfg["occupations"]
    size = int(cfg["bank_size"])
    seen: set[tuple[str, ...]] = set()
    personas: list[Persona] = []
    everyday = _Deck(cfg["goals"]["everyday"], rng)
    for index, occ in enumerate(occupations):
        # Spread bank_size over occupations as evenly as integers allow.
        count = size // len(occupations) + (index < size % len(occupations))
        settings = occ.get("settings", ["urban", "town", "rural"])
        regions = _Deck([r["name"] for r in cfg["regions"] if r["setting"] in settings], rng)
        ages = _Deck(occ.get("ages", list(cfg["age_bands"])), rng)
        levels = _Deck(list(EXPERTISE_LEVELS), rng)
        styles = _Deck(list(cfg["communication_styles"]), rng)
        # An occupation's own goals replace its domain's (a retired teacher does not mark essays).
        goals = _Deck(occ.get("goals") or cfg["goals"][occ["domain"]], rng)
        made, attempts = 0, 0
        while made < count:
            attempts += 1
            if attempts > count * 50:
                raise ValueError(f"occupation {occ['name']!r}: too few distinct combinations for {count}")
            goal = everyday.draw() if rng.random() < cfg["everyday_goal_share"] else goals.draw()
            attrs = {
                "occupation": occ["name"],
                "domain": occ["domain"],
                "region": regions.draw(),
                "age_band": ages.draw(),
                "expertise": levels.draw(),
                "goals": goal,
                "communication_style": styles.draw(),
            }
            key = tuple(attrs[name] for name in ATTRIBUTE_FIELDS)
            if key in seen:
                continue
            seen.add(key)
            personas.append(Persona(**attrs, description=describe(attrs, rng, cfg)))
            made += 1
    if len(dedupe_personas(personas)) != len(personas):
        raise ValueError("two personas got the same description; add phrasing variety to attributes.yaml")
    return sorted(personas, key=lambda p: p.id)


def render_bank(personas: Sequence[Persona]) -> str:
    return "".join(json.dumps(p.model_dump(), ensure_ascii=False) + "\n" for p in personas)


def build_bank(attributes: Path | str = DEFAULT_ATTRIBUTES, out: Path | str = DEFAULT_BANK) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render_bank(build_personas(load_attributes(attributes)))
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)  # atomic: a reader never sees a half-written bank
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attributes", default=str(DEFAULT_ATTRIBUTES))
    parser.add_argument("--out", default=str(DEFAULT_BANK))
    parser.add_argument("--check", action="store_true", help="verify --out is up to date; write nothing")
    args = parser.parse_args(argv)
    if args.check:
        expected = render_bank(build_personas(load_attributes(args.attributes)))
        out = Path(args.out)
        actual = out.read_text(encoding="utf-8") if out.exists() else ""
        if actual != expected:
            print(f"{out} is stale; rebuild with: python -m personas.build_bank", file=sys.stderr)
            return 1
        print(f"{out} is up to date")
        return 0
    out = build_bank(args.attributes, args.out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
