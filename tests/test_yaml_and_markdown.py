"""The YAML and Markdown layers: typing people expect, exact lines, posts cut correctly."""

import datetime as dt

from dissemination.load.markdown import split_front_matter, split_posts
from dissemination.load.yamlsrc import parse_yaml


def test_yaml_12_typing_keeps_words_times_and_decimals():
    doc, problems = parse_yaml("a: no\nb: on\nc: 10:30\nd: 0930\ne: true\nf: 1.5\ng: 2026-03-01\n", "x.yaml")
    assert problems == []
    assert doc.data == {"a": "no", "b": "on", "c": "10:30", "d": 930, "e": True, "f": 1.5,
                        "g": dt.date(2026, 3, 1)}


def test_impossible_date_stays_text_for_validation_to_report():
    doc, problems = parse_yaml("published: 2026-02-30\n", "x.yaml")
    assert problems == [] and doc.data == {"published": "2026-02-30"}


def test_duplicate_keys_are_reported_at_the_second_with_the_first_line():
    _, problems = parse_yaml("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n", "x.yaml", first_line=10)
    assert [(p.line, p.message) for p in problems] == [
        (13, "duplicate key 'c' (first written at line 12)"),
        (14, "duplicate key 'a' (first written at line 10)"),
    ]


def test_line_of_walks_nested_keys_and_list_items_with_offset():
    doc, _ = parse_yaml("x:\n  - id: a\n  - id: b\n    power: 9\n", "x.yaml", first_line=5)
    assert doc.line_of(("x", 1, "power")) == 8
    assert doc.line_of(("x", 1, "missing")) == 7  # deepest existing part: the list item
    assert doc.line_of(("nothing",)) == 5


def test_python_tags_are_refused_not_executed():
    doc, problems = parse_yaml("a: !!python/object/apply:os.system ['true']\n", "x.yaml")
    assert doc is None and "YAML syntax error" in problems[0].message


def test_front_matter_lines_are_exact_even_with_blank_lines_after_the_fence():
    fm, problems = split_front_matter("---\nid: a\n---\n\n\nBody\n", "k.md")
    assert problems == [] and fm.yaml_first_line == 2 and fm.body_first_line == 4
    assert fm.body.strip() == "Body"


def test_posts_meta_variants_and_fenced_headings():
    body = "\n".join([
        "Intro text.",          # 10
        "",                     # 11
        "## Eerste post",       # 12
        "slot: 2027-03-01 10:00",  # 13
        "audiences: [mkb]",     # 14
        "",                     # 15
        "Let op: dit is tekst.",  # 16
        "```",                  # 17
        "## not a heading",     # 18
        "```",                  # 19
        "### variant: linkedin",  # 20
        "LinkedIn-tekst.",      # 21
        "## Tweede post",       # 22
        "Let op: geen sleutels.",  # 23
    ])
    parsed = split_posts(body, first_line=10)
    assert parsed.intro == "Intro text."
    first, second = parsed.posts
    assert (first.title, first.line, first.meta_first_line) == ("Eerste post", 12, 13)
    assert first.meta_text == "slot: 2027-03-01 10:00\naudiences: [mkb]"
    assert first.text.startswith("Let op: dit is tekst.") and "## not a heading" in first.text
    assert first.text_line == 16
    assert [(v.targets, v.text, v.line) for v in first.variants] == [(("linkedin",), "LinkedIn-tekst.", 20)]
    assert second.meta_text == "" and second.text == "Let op: geen sleutels."


def test_a_misspelt_post_key_is_still_read_as_a_key():
    parsed = split_posts("## Post\nslto: 2027-03-01 10:00\n\nTekst.", first_line=1)
    assert parsed.posts[0].meta_text == "slto: 2027-03-01 10:00"
