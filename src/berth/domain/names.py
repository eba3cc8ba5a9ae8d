"""Names of workspaces, templates, agents and users (spec §6).

One rule for all of them, as in the reference system (``codersdk.NameValid``): names
appear in URLs, CLI arguments, hostnames and ``owner/name`` references, so they are
short ASCII words joined by single hyphens. ``new`` and ``create`` are refused because
they collide with routes such as ``/templates/new``.

Generation ports Coder's ``generatedWorkspaceName`` (+ ``codersdk.UsernameFrom`` and
``namesgenerator``): a chat that does not name its workspace gets one derived from the
template name, with a short random suffix so repeated creates do not collide.
"""

from __future__ import annotations

import random
import re

__all__ = [
    "ADJECTIVES",
    "MAX_NAME_LENGTH",
    "SURNAMES",
    "generate_name",
    "is_valid_name",
    "name_error",
    "random_name",
    "random_name_with_digit",
]

MAX_NAME_LENGTH = 32
_VALID = re.compile(r"[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*")  # used with fullmatch
_NOT_NAME_CHARS = re.compile(r"[^a-zA-Z0-9-]")
_RESERVED = frozenset({"new", "create"})
_BASE_LIMIT = 27  # leaves room for "-" and four hex digits within 32 bytes
_FALLBACK = "workspace"

# A modest subset of the moby/Coder names generator lists. Every
# "adjective-surname<digit>" combination stays well under 32 bytes.
ADJECTIVES: tuple[str, ...] = (
    "admiring", "adoring", "agitated", "amazing", "awesome", "blissful", "bold",
    "brave", "busy", "charming", "clever", "compassionate", "cool", "dazzling",
    "determined", "dreamy", "eager", "ecstatic", "elastic", "elated", "elegant",
    "epic", "exciting", "fervent", "festive", "focused", "friendly", "funny",
    "gallant", "gifted", "goofy", "gracious", "happy", "hopeful", "hungry",
    "inspiring", "intelligent", "jolly", "jovial", "keen", "kind", "laughing",
    "loving", "lucid", "magical", "modest", "nice", "nifty", "nostalgic",
    "objective", "optimistic", "peaceful", "pensive", "practical", "quirky",
    "quizzical", "relaxed", "reverent", "romantic", "serene", "sharp", "silly",
    "sleepy", "stoic", "sweet", "tender", "thirsty", "trusting", "upbeat",
    "vibrant", "vigilant", "vigorous", "wizardly", "wonderful", "youthful",
    "zealous", "zen",
)  # fmt: skip
SURNAMES: tuple[str, ...] = (
    "agnesi", "albattani", "allen", "archimedes", "babbage", "bardeen", "bartik",
    "bell", "bhabha", "blackwell", "bohr", "booth", "borg", "bose", "brahmagupta",
    "brattain", "carson", "cerf", "chandrasekhar", "clarke", "curie", "darwin",
    "diffie", "dijkstra", "einstein", "elion", "engelbart", "euclid", "euler",
    "faraday", "fermat", "fermi", "feynman", "franklin", "galileo", "gauss",
    "goldberg", "goodall", "hamilton", "hawking", "heisenberg", "hodgkin",
    "hopper", "hypatia", "jackson", "johnson", "kalam", "kepler", "knuth",
    "lamarr", "lamport", "leakey", "lovelace", "mayer", "mccarthy", "meitner",
    "mendel", "mirzakhani", "morse", "newton", "noether", "pascal", "pasteur",
    "perlman", "pike", "poincare", "ramanujan", "ritchie", "rosalind", "shannon",
    "shockley", "sinoussi", "swartz", "tesla", "thompson", "torvalds", "turing",
    "varahamihira", "volhard", "wiles", "williams", "wing", "wozniak", "wright",
    "yonath",
)  # fmt: skip

_DEFAULT_RNG = random.SystemRandom()


def name_error(name: str) -> str | None:
    """Why ``name`` is not a valid name, in the reference system's words; None if valid.

    Lengths are counted in UTF-8 bytes, as Go does.
    """
    size = len(name.encode("utf-8"))
    if size > MAX_NAME_LENGTH:
        return f"must be <= {MAX_NAME_LENGTH} characters"
    if size < 1:
        return "must be >= 1 character"
    if name in _RESERVED:
        return f'cannot use "{name}" as a name'
    if not _VALID.fullmatch(name):
        return "must be alphanumeric with hyphens"
    return None


def is_valid_name(name: str) -> bool:
    """True if ``name`` follows the name rules."""
    return name_error(name) is None


def random_name(rng: random.Random | None = None) -> str:
    """A random ``adjective-surname`` name (``namesgenerator.NameWith("-")``)."""
    rng = rng or _DEFAULT_RNG
    while True:
        name = f"{rng.choice(ADJECTIVES)}-{rng.choice(SURNAMES)}"
        if name != "boring-wozniak":  # Steve Wozniak is not boring (moby's rule, kept)
            return name


def random_name_with_digit(rng: random.Random | None = None) -> str:
    """A random ``adjective-surname<digit>`` name (``namesgenerator.NameDigitWith("-")``)."""
    rng = rng or _DEFAULT_RNG
    return f"{random_name(rng)}{rng.randrange(10)}"


def _name_from(seed: str, rng: random.Random) -> str:
    """``codersdk.UsernameFrom``: the seed if valid, else a cleaned-up or random name."""
    if is_valid_name(seed):
        return seed
    at = seed.rfind("@")
    if at >= 0:
        seed = seed[:at]
    seed = _NOT_NAME_CHARS.sub("", seed)
    if is_valid_name(seed):
        return seed
    return random_name(rng)


def generate_name(seed: str, rng: random.Random | None = None) -> str:
    """A valid, probably unique name derived from ``seed``: ``My Project!`` → ``myproject-1a2b``.

    Used for workspaces a chat creates without a usable name: the seed is the template
    name or the invalid name the model asked for. Pass ``rng`` for reproducible tests.
    """
    rng = rng or _DEFAULT_RNG
    base = _name_from(seed.lower().strip(), rng)
    if not base.strip():
        base = _FALLBACK
    suffix = f"{rng.getrandbits(16):04x}"
    if len(base) > _BASE_LIMIT:
        base = base[:_BASE_LIMIT].strip("-")
    if not base:
        base = _FALLBACK
    name = f"{base}-{suffix}"
    if is_valid_name(name):
        return name
    return random_name_with_digit(rng)
