"""The README's other workbook formats and the EUC encodings, each ingested and previewed exactly.

README: "Excel (`.xlsx`, `.xlsm`, `.ods`, `.xls`)" and "Text in ... Shift-JIS, EUC or Windows-1252
is detected and re-encoded to UTF-8". The workbooks are written here by the libraries that make
such files (xlwt for BIFF8 .xls, odfpy for OpenDocument, openpyxl with a macro-enabled package for
.xlsm); the ingest reads them with calamine, which shares no code with any of them.
"""
from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest

from tests.conftest import wait_for_ingest

HEADER = ["city", "population", "area_km2", "counted", "note"]
ROWS = [["서울", 9586195, 605.2, dt.date(2020, 11, 1), "대한민국의 수도"],
        ["Zürich", 421878, 87.88, dt.date(2023, 12, 31), "Finanzplatz, 1 Mio. Einwohner"],
        ["東京", 13960000, 2194.07, dt.date(2024, 1, 15), "日本の首都"]]
SHEET = "städte"
# What the preview must show for ROWS: the row number, then each cell as it was written.
EXPECTED = [{"_id": i + 1, "city": r[0], "population": r[1], "area_km2": r[2], "counted": r[3].isoformat(),
             "note": r[4]} for i, r in enumerate(ROWS)]


def _xls() -> bytes:
    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    book.add_sheet("cover").write(0, 0, "see the next sheet")
    sheet = book.add_sheet(SHEET)
    date = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    for r, row in enumerate([HEADER, *ROWS]):
        for c, value in enumerate(row):
            sheet.write(r, c, value, date) if isinstance(value, dt.date) else sheet.write(r, c, value)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _xlsm() -> bytes:
    """A macro-enabled workbook: openpyxl writes the .xlsm package (content type
    ``sheet.macroEnabled.main+xml``) for a workbook loaded with ``keep_vba``."""
    from openpyxl import Workbook, load_workbook

    book = Workbook()
    book.active.title = "cover"
    book.active.append(["see the next sheet"])
    sheet = book.create_sheet(SHEET)
    for row in [HEADER, *ROWS]:
        sheet.append(row)
    plain = io.BytesIO()
    book.save(plain)
    macro = io.BytesIO()
    load_workbook(io.BytesIO(plain.getvalue()), keep_vba=True).save(macro)
    with zipfile.ZipFile(macro) as zf:
        assert b"application/vnd.ms-excel.sheet.macroEnabled.main+xml" in zf.read("[Content_Types].xml")
    return macro.getvalue()


def _ods() -> bytes:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    cover = Table(name="cover")
    doc.spreadsheet.addElement(cover)
    sheet = Table(name=SHEET)
    for row in [HEADER, *ROWS]:
        tr = TableRow()
        for value in row:
            if isinstance(value, str):
                cell = TableCell(valuetype="string")
            elif isinstance(value, dt.date):
                cell = TableCell(valuetype="date", datevalue=value.isoformat())
            else:
                cell = TableCell(valuetype="float", value=value)
            cell.addElement(P(text=value if isinstance(value, str) else str(value)))
            tr.addElement(cell)
        sheet.addElement(tr)
    doc.spreadsheet.addElement(sheet)
    cover_row, cover_cell = TableRow(), TableCell(valuetype="string")
    cover_cell.addElement(P(text="see the next sheet"))
    cover_row.addElement(cover_cell)
    cover.addElement(cover_row)
    buf = io.BytesIO()
    doc.write(buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def ckan(mosu):
    return mosu.admin_with_dataset("sheets-and-encodings")


def _ingest(ckan, content: bytes, filename: str, **fields) -> dict:
    res = ckan.action.resource_create(package_id="sheets-and-encodings", upload=(filename, io.BytesIO(content)),
                                      **fields)
    return wait_for_ingest(ckan, res["id"])


def _preview(ckan, res: dict) -> list[dict]:
    assert res["ingest_status"] == "ready", res["ingest_error"]
    return ckan.action.datastore_search(resource_id=res["id"], limit=100)["records"]


@pytest.mark.parametrize("make,filename", [(_xls, "städte.xls"), (_xlsm, "städte.xlsm"), (_ods, "städte.ods")],
                         ids=["xls", "xlsm", "ods"])
def test_each_workbook_format_is_ingested_and_previewed_exactly(ckan, make, filename):
    # The table is on the second sheet, named in the resource's ``sheet``: the first is a cover note.
    res = _ingest(ckan, make(), filename, sheet=SHEET)
    assert _preview(ckan, res) == EXPECTED
    assert res["row_count"] == len(ROWS)
    # Typed as the same cells in a CSV would be: .xlsx and .ods store every number as a float,
    # and a column of whole numbers is still an integer column (9586195, never 9586195.0).
    fields = ckan.action.datastore_search(resource_id=res["id"], limit=0)["fields"]
    assert {f["id"]: f["type"] for f in fields} == {"_id": "int", "city": "text", "population": "int",
                                                    "area_km2": "float", "counted": "date", "note": "text"}


CITIES = {
    "euc_jp": [("東京", 13960000, "日本の首都で最大の都市"), ("大阪", 2750000, "関西地方の中心都市"),
               ("名古屋", 2330000, "中部地方の工業都市")] * 5,
    "euc_kr": [("서울", 9586195, "대한민국의 수도이자 최대 도시"), ("부산", 3349016, "남동쪽의 항구 도시"),
               ("인천", 2948375, "서해안의 관문 도시")] * 5,
}


@pytest.mark.parametrize("encoding", sorted(CITIES))
def test_euc_encodings_are_detected_and_previewed_exactly(ckan, encoding):
    cities = CITIES[encoding]
    text = "city,population,note\n" + "".join(f"{c},{p},{n}\n" for c, p, n in cities)
    res = _ingest(ckan, text.encode(encoding), f"cities-{encoding}.csv")
    assert _preview(ckan, res) == [{"_id": i + 1, "city": c, "population": p, "note": n}
                                   for i, (c, p, n) in enumerate(cities)]
    assert ckan.action.ingest_status_show(id=res["id"])["progress"]["encoding"] == encoding
