"""The search query parser (pure) and the index on hand-made documents."""
from __future__ import annotations

import pytest

from catalog.core.errors import SearchQueryError
from catalog.search.documents import Document
from catalog.search.index import SearchIndex, SearchRequest, Visibility
from catalog.search.parse import All, And, Not, Or, Phrase, Range, Term, parse_query, parse_sort, tokenize


def test_words_phrases_fields_and_operators():
    assert parse_query("") == All() and parse_query("*:*") == All()
    assert parse_query("sea level") == And((Term(None, "sea"), Term(None, "level")))
    assert parse_query('"sea level"') == Phrase(None, ("sea", "level"))
    assert parse_query("tags:Ocean") == Term("tags", "ocean")
    assert parse_query("-organization:x y") == And((Not(Term("organization", "x")), Term(None, "y")))
    assert parse_query("a OR b AND c") == Or((Term(None, "a"), And((Term(None, "b"), Term(None, "c")))))
    assert parse_query("NOT (a OR b)") == Not(Or((Term(None, "a"), Term(None, "b"))))
    assert parse_query("title:(water OR air)") == Or((Term("title", "water"), Term("title", "air")))
    assert parse_query("name:abc*") == Term("name", "abc", prefix=True)
    assert parse_query("metadata_modified:[2024-01-01T00:00:00Z TO *]") == \
        Range("metadata_modified", "2024-01-01T00:00:00Z", None)
    assert parse_query("covid-19") == Phrase(None, ("covid", "19"))


def test_cjk_text_is_searchable_by_character():
    assert tokenize("上海 空气质量 PM2.5") == ["上", "海", "空", "气", "质", "量", "pm2", "5"]
    assert parse_query("空气") == Phrase(None, ("空", "气"))


@pytest.mark.parametrize("bad", ["(a", "a)", '"a', "nosuch:x", "title:", "AND", "a OR", "x AND",
                                 "metadata_modified:[2024 TO]", "tags:[a TO b]", "-", "*:x"])
def test_malformed_queries_are_rejected_with_a_reason(bad):
    with pytest.raises(SearchQueryError):
        parse_query(bad)


def test_sort_parsing():
    assert parse_sort(None) == [("score", True), ("metadata_modified", True)]
    assert parse_sort("name asc, title desc") == [("name", False), ("title_string", True)]
    for bad in ("popularity desc", "name sideways", "name asc desc"):
        with pytest.raises(SearchQueryError):
            parse_sort(bad)


def _doc(i: int, title: str, tags: list[str], org: str = "o1", private: bool = False, state: str = "active",
         fmt: str = "CSV") -> Document:
    pid = f"00000000-0000-0000-0000-{i:012d}"
    return Document(id=pid, name=f"d{i}", title=title, state=state, private=private, owner_org=f"id-{org}",
                    org_name=org, org_title=org.upper(), license_id="cc-by", modified=1_700_000_000 + i,
                    created=1_700_000_000 + i, creator_user_id=None, tags=tags, groups=[], res_formats=[fmt],
                    res_names=[], res_descriptions=[], notes="", author="", maintainer="", extras_text="",
                    dict={"id": pid, "name": f"d{i}"})


def test_index_ranks_filters_hides_and_replaces():
    index = SearchIndex()
    index.apply([_doc(1, "Ocean temperature", ["ocean"]), _doc(2, "River data", ["ocean", "river"], org="o2"),
                 _doc(3, "Secret ocean", ["ocean"], private=True), _doc(4, "Old ocean", ["ocean"], state="deleted")])
    res = index.search(SearchRequest(q="ocean", facet_fields=["organization", "tags"]), Visibility())
    assert [d["name"] for d in res.dicts] == ["d1", "d2"] and res.count == 2
    assert res.facets["tags"] == {"ocean": 2, "river": 1}
    assert res.search_facets["organization"]["items"][0]["display_name"] in ("O1", "O2")
    member = Visibility(org_ids=frozenset({"id-o1"}), include_private=True)
    assert index.search(SearchRequest(q="ocean"), member).count == 3
    index.apply([_doc(2, "River levels", ["river"], org="o2")])
    assert index.search(SearchRequest(q="tags:ocean"), Visibility()).count == 1
    index.apply([], gone=["00000000-0000-0000-0000-000000000001"])
    assert index.search(SearchRequest(q="ocean"), Visibility()).count == 0
    assert index.search(SearchRequest(fq=["res_format:csv"], sort="name desc"), Visibility()).ids == \
        ["00000000-0000-0000-0000-000000000002"]
