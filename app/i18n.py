"""Translation helpers.

``N_`` marks a string for message extraction without translating it (module-level tables such
as role names and navigation labels, translated with ``_()`` where they are shown).

``missing_translations()`` extracts every marked string as ``make translations-update`` does
(babel.cfg) and lists those the English catalogue lacks; ``python -m app.i18n`` prints them.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "app" / "translations" / "en" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_l": None, "lazy_gettext": None, "N_": None}  # besides Babel's defaults
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def N_(message: str) -> str:
    return message


def extract_messages(root: Path = ROOT) -> dict[str, str]:
    """Every marked msgid (plural forms: the singular) → the first file it appears in."""
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    with open(root / "babel.cfg", encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found: dict[str, str] = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(
            str(root), method_map, options_map, keywords={**DEFAULT_KEYWORDS, **KEYWORDS}):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            found.setdefault(msgid, filename)
    return found


def missing_translations(root: Path = ROOT) -> list[str]:
    """``file: msgid`` for each marked string with no (or a fuzzy, or a broken) English msgstr."""
    from babel.messages.pofile import read_po

    with open(root / CATALOGUE.relative_to(ROOT), "rb") as fh:
        catalog = read_po(fh, locale="en")
    problems = []
    for msgid, filename in sorted(extract_messages(root).items(), key=lambda kv: (kv[1], kv[0])):
        entry = catalog.get(msgid)
        strings = [] if entry is None else ([entry.string] if isinstance(entry.string, str) else list(entry.string))
        if entry is None or entry.fuzzy or not all(strings):
            problems.append(f"{filename}: {msgid}")
        elif any(set(PLACEHOLDER.findall(s)) - set(PLACEHOLDER.findall(msgid)) for s in strings):
            problems.append(f"{filename}: {msgid} (placeholders differ)")
    return problems


if __name__ == "__main__":  # pragma: no cover
    missing = missing_translations()
    for line in missing:
        print(line)
    print(f"{len(missing)} string(s) without English in {CATALOGUE.relative_to(ROOT)}")
