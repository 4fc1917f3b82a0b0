"""CITATION.cff is complete and the BibTeX entries on docs/research.md say the same: the workbench's version (the
package's), release date and repository address, and the two works it stands on, the paper and the dataset,
with their authors and years. A citation that drifts from the code or from the other format fails here."""
import datetime
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER = "YOUR-ACCOUNT"  # the repository address the publisher fills in (CITATION.cff says so)


def _cff() -> dict:
    return yaml.safe_load((ROOT / "CITATION.cff").read_text())


def _braced(text: str, start: int) -> tuple[str, int]:
    """The text inside the braces that open at `start`, and the position after them (nested braces kept)."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start + 1:i], i + 1
    raise ValueError(f"unbalanced braces from {text[start:start + 40]!r}")


def bibtex(text: str) -> dict[str, dict[str, str]]:
    """key -> {field: value} of every BibTeX entry in `text` (values with their inner braces taken off)."""
    entries = {}
    for m in re.finditer(r"@\w+\{", text):
        body, _ = _braced(text, m.end() - 1)
        key, _, rest = body.partition(",")
        fields, pos = {}, 0
        while (f := re.compile(r"\s*(\w+)\s*=\s*\{").match(rest, pos)):
            value, pos = _braced(rest, f.end() - 1)
            fields[f.group(1)] = " ".join(value.replace("{", "").replace("}", "").split())
            pos = rest.find(",", pos) + 1 or len(rest)
        entries[key.strip()] = fields
    return entries


def _entries() -> dict[str, dict[str, str]]:
    page = (ROOT / "docs" / "research.md").read_text()
    return bibtex(re.search(r"^```bibtex\n(.*?)^```", page, flags=re.S | re.M).group(1))


def test_citation_cff_is_complete_and_its_version_is_the_packages():
    from dynnn_lib.core import __version__

    cff = _cff()
    for field in ("cff-version", "message", "title", "type", "authors", "version", "date-released",
                  "repository-code", "license", "references"):
        assert cff.get(field), f"CITATION.cff has no {field}"
    pyproject = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), flags=re.M).group(1)
    assert cff["cff-version"] == "1.2.0" and str(cff["version"]) == pyproject == __version__
    assert datetime.date.fromisoformat(str(cff["date-released"]))
    assert re.fullmatch(r"https://\S+", cff["repository-code"])
    if PLACEHOLDER in cff["repository-code"]:  # a placeholder says so where it stands
        assert f"replace {PLACEHOLDER}" in (ROOT / "CITATION.cff").read_text()
    assert cff["license"] == "MIT" and (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "the dynnn authors" in (ROOT / "LICENSE").read_text()


def test_citation_cff_cites_the_paper_and_the_dataset_with_their_years():
    refs = {r["title"]: r for r in _cff()["references"]}
    paper = refs["Dynamic Neural Network for Incremental Learning"]
    dataset = refs["OpenLORIS-Object: A Robotic Vision Dataset and Benchmark for Lifelong Deep Learning"]
    assert paper["year"] == 2019 and "IROS 2019" in paper["conference"]["name"]
    assert [a["family-names"] for a in paper["authors"]] == ["Ma", "Wu", "Zhong", "Xie", "Pu"]
    assert dataset["year"] == 2020 and "ICRA" in dataset["conference"]["name"]
    assert dataset["authors"][0]["family-names"] == "She" and len(dataset["authors"]) == 12
    for ref in refs.values():
        assert ref["type"] and ref["url"].startswith("https://")


def test_the_bibtex_entries_say_what_citation_cff_says():
    cff, entries = _cff(), _entries()
    ours = entries["dynnn"]
    assert ours["title"] == cff["title"] and ours["year"] == str(cff["date-released"])[:4]
    assert cff["repository-code"] in ours["howpublished"]
    assert f"version {cff['version']}" in ours["note"] and f"released {cff['date-released']}" in ours["note"]
    for ref in cff["references"]:
        entry = next((e for e in entries.values() if e["title"] == ref["title"]), None)
        assert entry, f"no BibTeX entry for {ref['title']}"
        assert entry["year"] == str(ref["year"]) and entry.get("url") == ref["url"], ref["title"]
        family = [a.split(",")[0].strip() for a in entry["author"].split(" and ")]
        assert family == [a["family-names"] for a in ref["authors"]], ref["title"]


def test_the_bibtex_reader_reads_nested_braces_and_fails_on_unbalanced_ones():
    read = bibtex("@misc{k,\n  title = {{A}: b {C}},\n  year = {2019}\n}")
    assert read == {"k": {"title": "A: b C", "year": "2019"}}
    try:
        bibtex("@misc{k, title = {open")
    except ValueError:
        return
    raise AssertionError("unbalanced braces were read")
