"""Which outlets are dev and test (data/splits.json); every other outlet trains. Splits go by outlet,
so the test score is out of domain."""

from __future__ import annotations

from pathlib import Path

from serving.brackets import FormatError
from serving.errors import MissingError


def read_splits(path: Path) -> dict[str, frozenset[str]]:
    """data/splits.json: the outlets of the dev and test splits (every other outlet trains)."""
    import json

    path = Path(path)
    if not path.is_file():
        raise MissingError(
            f'{path} is missing: it names the dev and test outlets, {{"test": [outlets], "dev": [outlets]}}'
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FormatError(str(path), getattr(err, "lineno", 0), f"not valid JSON ({err})") from None
    splits = {}
    for name in ("test", "dev"):
        outlets = raw.get(name) if isinstance(raw, dict) else None
        if not isinstance(outlets, list) or not all(isinstance(o, str) and o for o in outlets):
            raise FormatError(str(path), None, f'"{name}" must be a list of outlet names')
        splits[name] = frozenset(outlets)
    both = splits["test"] & splits["dev"]
    if both:
        raise FormatError(str(path), None, f"outlet(s) {sorted(both)} are in both test and dev")
    return splits


def split_of(outlet: str, splits: dict[str, frozenset[str]]) -> str:
    for name, outlets in splits.items():
        if outlet in outlets:
            return name
    return "train"
