"""Tests of the roster (花名册) template: reading, writing and row validation."""

import csv
import io
import re
import zipfile
from datetime import date, datetime

import pytest
from openpyxl import Workbook, load_workbook
from stdnum.cn import ric

from gonghui_shared.vocabulary import Gender, HouseholdType, MemberCategory, NewEmploymentSubtype
from membership.rosters.template import (
    REQUIRED_COLUMNS,
    TEMPLATE_COLUMNS,
    RosterFileError,
    RosterRow,
    match_header,
    read_roster,
    template_description,
    validate_row,
    validate_rows,
    write_roster_csv,
    write_roster_xlsx,
)

ALL_CODES = [column.code for column in TEMPLATE_COLUMNS]


def id_number(first17: str = "53092119900101123") -> str:
    return first17 + ric.calc_check_digit(first17 + "0")


def sample_rows() -> list[dict[str, str]]:
    return [
        {
            "seq": "1",
            "name": "李明",
            "id_number": id_number("53092119900101123"),
            "phone": "13800138000",
            "household_type": "农村",
            "category": "农民工",
            "subtype": "",
            "employer": "凤庆县滇红茶厂",
            "form_ref": "FQ-2024-0001",
            "member_no": "",
            "org_name": "",
        },
        {
            "seq": "2",
            "name": "王芳",
            "id_number": id_number("53092119951120002"),
            "phone": "+8613912345678",
            "household_type": "城镇",
            "category": "新就业形态劳动者",
            "subtype": "外卖骑手",
            "employer": '=HYPERLINK("http://example.invalid")',
            "form_ref": "FQ-2024-0002",
            "member_no": "M000002",
            "org_name": "凤山镇东城社区工会委员会",
        },
        {
            "seq": "3",
            "name": "阿布·依沙",
            "id_number": id_number("53092119800515001"),
            "phone": "0883-4212345",
            "household_type": "rural",
            "category": "employee",
            "subtype": "",
            "employer": "",
            "form_ref": "-7",
            "member_no": "",
            "org_name": "",
        },
    ]


def xlsx_bytes(rows) -> bytes:
    out = io.BytesIO()
    write_roster_xlsx(rows, out)
    return out.getvalue()


def csv_text(rows) -> str:
    out = io.StringIO(newline="")
    write_roster_csv(rows, out)
    return out.getvalue()


def sheet_bytes(rows: list[list[object]]) -> bytes:
    """An xlsx whose first sheet holds exactly these cell values, row after row."""
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def csv_bytes(rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out).writerows(rows)
    return out.getvalue().encode(encoding)


HEADER = [
    "姓名",
    "公民身份号码",
    "手机号码",
    "户籍类型",
    "会员类别",
    "新就业形态类型",
    "入会申请书编号",
]


# ---------------------------------------------------------------- template


def test_template_columns_in_order_with_required_flags():
    description = template_description()

    assert [c["code"] for c in description] == [
        "seq",
        "name",
        "id_number",
        "phone",
        "household_type",
        "category",
        "subtype",
        "employer",
        "form_ref",
        "member_no",
        "org_name",
    ]
    assert [c["code"] for c in description if c["required"]] == list(REQUIRED_COLUMNS)
    assert set(REQUIRED_COLUMNS) == {
        "name",
        "id_number",
        "phone",
        "household_type",
        "category",
        "form_ref",
    }
    by_code = {c["code"]: c for c in description}
    assert by_code["name"]["header_zh"] == "姓名"
    assert by_code["name"]["header"] == "姓名(name)"
    assert by_code["subtype"]["required_when"] == "category=new_employment"
    assert by_code["member_no"]["export_only"] is True
    assert all(c["description"] for c in description)


@pytest.mark.parametrize(
    ("cell", "code"),
    [
        ("name", "name"),
        ("姓名", "name"),
        ("姓名(name)", "name"),
        ("姓名（name）", "name"),
        (" 姓 名 ( name ) ", "name"),
        ("NAME", "name"),
        ("*姓名", "name"),
        ("公民身份号码(id_number)", "id_number"),
        ("入会申请书编号", "form_ref"),
        ("身份证号", None),
        ("姓名(phone)", None),
    ],
)
def test_header_matching(cell, code):
    assert match_header(cell) == code


# ---------------------------------------------------------------- round trips


def test_xlsx_round_trip():
    rows = sample_rows()

    roster = read_roster(xlsx_bytes(rows), "花名册.xlsx")

    assert roster.columns == ALL_CODES
    assert roster.warnings == []
    assert roster.header_row == 1
    assert [r.row_number for r in roster.rows] == [2, 3, 4]
    assert [r.values for r in roster.rows] == rows
    applicants, errors = validate_rows(roster.rows)
    assert errors == []
    assert [a.name for _, a in applicants] == ["李明", "王芳", "阿布·依沙"]


def test_xlsx_writes_ids_and_phones_as_text_and_formulas_as_strings():
    workbook = load_workbook(io.BytesIO(xlsx_bytes(sample_rows())))
    sheet = workbook.worksheets[0]
    header = [cell.value for cell in sheet[1]]

    assert header == [column.header for column in TEMPLATE_COLUMNS]
    id_cell, phone_cell, employer_cell = sheet["C2"], sheet["D3"], sheet["H3"]
    assert (id_cell.data_type, id_cell.number_format, id_cell.value) == (
        "s",
        "@",
        sample_rows()[0]["id_number"],
    )
    assert (phone_cell.data_type, phone_cell.value) == ("s", "+8613912345678")
    assert employer_cell.data_type == "s"
    assert employer_cell.value.startswith("=HYPERLINK")
    assert sheet.freeze_panes == "A2"
    assert len(sheet.data_validations.dataValidation) == 3


def test_blank_template_reads_as_an_empty_roster():
    roster = read_roster(xlsx_bytes([]), "template.xlsx")

    assert roster.columns == ALL_CODES
    assert roster.rows == []


def test_csv_round_trip():
    rows = sample_rows()
    text = csv_text(rows)

    roster = read_roster(text.encode("utf-8"), "roster.CSV")

    assert text.startswith("\ufeff")
    assert text.splitlines()[0] == "\ufeff" + ",".join(column.header for column in TEMPLATE_COLUMNS)
    assert [r.values for r in roster.rows] == rows
    assert validate_rows(roster.rows)[1] == []


def test_csv_protects_long_numbers_and_formulas_from_excel():
    records = list(csv.reader(io.StringIO(csv_text(sample_rows()).lstrip("\ufeff"))))

    first, second, third = records[1], records[2], records[3]
    assert first[2] == "\t" + sample_rows()[0]["id_number"]
    assert second[3] == "\t+8613912345678"
    assert second[7] == '\'=HYPERLINK("http://example.invalid")'
    assert third[8] == "'-7"


def test_gb18030_csv_as_saved_by_excel_in_china():
    data = csv_bytes(
        [HEADER, ["张三丰", id_number(), "13800138000", "农业户口", "农民工", "", "申-001"]],
        encoding="gb18030",
    )
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")

    roster = read_roster(data, "会员.csv")

    assert roster.rows[0].values["name"] == "张三丰"
    applicant, errors = validate_row(roster.rows[0])
    assert errors == []
    assert applicant.household_type is HouseholdType.RURAL


def test_tab_separated_csv():
    data = (
        "\t".join(HEADER).encode()
        + b"\n"
        + "\t".join(["张三", id_number(), "13800138000", "农村", "农民工", "", "A1"]).encode()
    )

    roster = read_roster(data, "r.csv")

    assert roster.rows[0].values["form_ref"] == "A1"


# ---------------------------------------------------------------- headers


def test_header_variants_unknown_columns_and_title_row():
    data = sheet_bytes(
        [
            ["凤庆县总工会农民工入会花名册"],
            [
                "序号",
                "name",
                "公民身份号码（id_number）",
                "*手机号码",
                " 户籍类型 ",
                "会员类别(category)",
                "备注",
                "入会申请书编号",
            ],
            [1, "张三", id_number(), 13800138000, "农村", "农民工", "老会员", "A-1"],
        ]
    )

    roster = read_roster(data, "r.xlsx")

    assert roster.header_row == 2
    assert roster.columns == [
        "seq",
        "name",
        "id_number",
        "phone",
        "household_type",
        "category",
        "form_ref",
    ]
    assert [(w.code, w.header) for w in roster.warnings] == [("unknown_column", "备注")]
    assert roster.warnings[0].message_zh
    row = roster.rows[0]
    assert row.row_number == 3
    assert row.values["phone"] == "13800138000"
    assert "备注" not in row.values
    applicant, errors = validate_row(row)
    assert errors == []
    assert applicant.subtype is None


def test_missing_required_columns_is_a_file_error():
    data = csv_bytes(
        [["姓名", "手机号码", "会员类别", "备注"], ["张三", "13800138000", "农民工", ""]]
    )

    with pytest.raises(RosterFileError) as caught:
        read_roster(data, "r.csv")

    assert caught.value.code == "missing_columns"
    assert caught.value.columns == ["id_number", "household_type", "form_ref"]
    assert "公民身份号码(id_number)" in caught.value.message
    assert "缺少必填列" in caught.value.message_zh


def test_duplicate_columns_is_a_file_error():
    data = csv_bytes([[*HEADER, "name"]])

    with pytest.raises(RosterFileError) as caught:
        read_roster(data, "r.csv")

    assert caught.value.code == "duplicate_columns"
    assert caught.value.columns == ["name"]


@pytest.mark.parametrize(
    ("data", "filename", "code"),
    [
        (b"", "r.csv", "empty_file"),
        (b"\n\n , ,\n", "r.csv", "empty_file"),
        (sheet_bytes([]), "r.xlsx", "empty_file"),
        (b"PK\x03\x04 not really a zip", "r.xlsx", "unreadable_file"),
        (b"a,b\n", "r.xls", "unsupported_file_type"),
        (b"a,b\n", "roster", "unsupported_file_type"),
        (b"a,b\n", "r.txt", "unsupported_file_type"),
    ],
)
def test_file_errors(data, filename, code):
    with pytest.raises(RosterFileError) as caught:
        read_roster(data, filename)

    assert caught.value.code == code
    assert caught.value.message
    assert caught.value.message_zh


# ---------------------------------------------------------------- cells


def replace_cell_value(xlsx: bytes, placeholder: str, raw: str) -> bytes:
    """Rewrite a numeric cell's stored text, as another spreadsheet program would write it."""
    source = zipfile.ZipFile(io.BytesIO(xlsx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                content, count = re.subn(
                    f"<v>{placeholder}</v>".encode(), f"<v>{raw}</v>".encode(), content
                )
                assert count == 1
            target.writestr(item, content)
    return out.getvalue()


def test_numeric_cells_keep_their_digits():
    exact = id_number()
    data = sheet_bytes(
        [
            HEADER + ["序号", "工作单位"],
            [
                "张三",
                4242,
                13800138000,
                "农村",
                "农民工",
                None,
                datetime(2024, 3, 1),
                7.0,
                date(2024, 3, 2),
            ],
        ]
    )
    data = replace_cell_value(data, "4242", exact)

    roster = read_roster(data, "r.xlsx")

    values = roster.rows[0].values
    assert values["id_number"] == exact
    assert values["phone"] == "13800138000"
    assert values["seq"] == "7"
    assert values["form_ref"] == "2024-03-01"
    assert values["employer"] == "2024-03-02"
    assert roster.rows[0].numeric == {"id_number", "phone", "seq"}
    assert validate_row(roster.rows[0])[1] == []


def test_id_number_rounded_by_excel_gets_a_hint():
    # Excel keeps 15 significant digits: 530921199001011234 is stored as 5.30921199001011E+17.
    data = sheet_bytes(
        [HEADER, ["张三", 5.30921199001011e17, "13800138000", "农村", "农民工", None, "A-1"]]
    )

    roster = read_roster(data, "r.xlsx")
    applicant, errors = validate_row(roster.rows[0])

    assert roster.rows[0].values["id_number"] == "530921199001011000"
    assert applicant is None
    assert [(e.column, e.code) for e in errors] == [("id_number", "checksum")]
    assert "text" in errors[0].message
    assert "文本" in errors[0].message_zh


def test_empty_rows_are_skipped_and_row_numbers_stay_spreadsheet_rows():
    good = ["张三", id_number(), "13800138000", "农村", "农民工", "", "A-1"]
    data = csv_bytes(
        [HEADER, good, [], ["", "", ""], ["  ", "", "", "", "", "", ""], good[:1] + [""] * 6]
    )

    roster = read_roster(data, "r.csv")

    assert [r.row_number for r in roster.rows] == [2, 6]
    xlsx = sheet_bytes([HEADER, good, [None, None], [], good])
    assert [r.row_number for r in read_roster(xlsx, "r.xlsx").rows] == [2, 5]


# ---------------------------------------------------------------- validation


def row(number: int = 2, **values: str) -> RosterRow:
    base = {
        "name": "张三",
        "id_number": id_number("53092119900101123"),
        "phone": "13800138000",
        "household_type": "农村",
        "category": "农民工",
        "subtype": "",
        "employer": "",
        "form_ref": "FQ-1",
    }
    base.update(values)
    return RosterRow(number, base)


def test_valid_row_becomes_applicant_data():
    applicant, errors = validate_row(row(employer=" 凤庆县茶厂 ", name=" 张三 "))

    assert errors == []
    assert applicant.name == "张三"
    assert applicant.id.number == id_number("53092119900101123")
    assert applicant.id.gender is Gender.MALE
    assert applicant.phone == "+8613800138000"
    assert applicant.household_type is HouseholdType.RURAL
    assert applicant.category is MemberCategory.MIGRANT_WORKER
    assert applicant.subtype is None
    assert applicant.employer == "凤庆县茶厂"
    assert applicant.form_ref == "FQ-1"


def test_all_errors_of_a_row_are_collected():
    bad_checksum = id_number()[:-1] + ("1" if id_number()[-1] != "1" else "2")

    applicant, errors = validate_row(
        row(
            7,
            name="",
            id_number=bad_checksum,
            phone="12345",
            household_type="海外",
            category="学生",
            form_ref="x" * 65,
        )
    )

    assert applicant is None
    assert {e.row for e in errors} == {7}
    assert [(e.column, e.code) for e in errors] == [
        ("name", "required"),
        ("id_number", "checksum"),
        ("phone", "invalid"),
        ("household_type", "invalid_choice"),
        ("category", "invalid_choice"),
        ("form_ref", "too_long"),
    ]
    assert all(e.message and e.message_zh for e in errors)
    assert "农民工" in errors[4].message_zh


def test_missing_required_values_and_columns():
    applicant, errors = validate_row(RosterRow(3, {"name": "张三"}))

    assert applicant is None
    assert [(e.column, e.code) for e in errors] == [
        ("id_number", "required"),
        ("phone", "required"),
        ("household_type", "required"),
        ("category", "required"),
        ("form_ref", "required"),
    ]


def test_name_length_limit():
    assert validate_row(row(name="名" * 50))[1] == []
    assert [(e.column, e.code) for e in validate_row(row(name="名" * 51))[1]] == [
        ("name", "too_long")
    ]


def test_new_employment_requires_a_subtype():
    applicant, errors = validate_row(row(category="新就业形态劳动者", subtype=""))

    assert applicant is None
    assert [(e.column, e.code) for e in errors] == [("subtype", "required")]


@pytest.mark.parametrize(
    ("text", "subtype"),
    [
        ("骑手", NewEmploymentSubtype.RIDER),
        ("外卖员", NewEmploymentSubtype.RIDER),
        ("快递员", NewEmploymentSubtype.COURIER),
        ("网约车", NewEmploymentSubtype.RIDE_HAILING_DRIVER),
        ("truck_driver", NewEmploymentSubtype.TRUCK_DRIVER),
    ],
)
def test_new_employment_with_subtype(text, subtype):
    applicant, errors = validate_row(row(category="new_employment", subtype=text))

    assert errors == []
    assert applicant.category is MemberCategory.NEW_EMPLOYMENT
    assert applicant.subtype is subtype


def test_subtype_not_allowed_for_other_categories():
    applicant, errors = validate_row(row(category="职工", subtype="快递员"))

    assert applicant is None
    assert [(e.column, e.code) for e in errors] == [("subtype", "not_allowed")]


def test_unknown_subtype_is_reported():
    _, errors = validate_row(row(category="新就业形态", subtype="厨师"))

    assert [(e.column, e.code) for e in errors] == [("subtype", "invalid_choice")]


def test_same_person_twice_in_one_roster():
    rows = [row(2), row(3, id_number=id_number("53092119900101125")), row(4)]

    applicants, errors = validate_rows(rows)

    assert [number for number, _ in applicants] == [2, 3]
    assert [(e.row, e.column, e.code) for e in errors] == [(4, "id_number", "duplicate")]
    assert "2" in errors[0].message


@pytest.mark.parametrize(
    ("text", "household_type"),
    [
        ("城镇", HouseholdType.URBAN),
        ("非农业", HouseholdType.URBAN),
        ("城镇户口", HouseholdType.URBAN),
        (" Urban ", HouseholdType.URBAN),
        ("农业", HouseholdType.RURAL),
        ("农村户口", HouseholdType.RURAL),
        ("ＲＵＲＡＬ", HouseholdType.RURAL),
    ],
)
def test_household_type_variants(text, household_type):
    applicant, errors = validate_row(row(household_type=text))

    assert errors == []
    assert applicant.household_type is household_type


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("migrant_worker", MemberCategory.MIGRANT_WORKER),
        ("农 民 工", MemberCategory.MIGRANT_WORKER),
        ("职工", MemberCategory.EMPLOYEE),
        ("其他", MemberCategory.OTHER),
        ("其它", MemberCategory.OTHER),
        ("OTHER", MemberCategory.OTHER),
    ],
)
def test_category_variants(text, category):
    applicant, errors = validate_row(row(category=text))

    assert errors == []
    assert applicant.category is category
    assert applicant.category.label_zh in {"农民工", "职工", "其他"}
