"""The roster (花名册) file template: coded columns, as union federations issue them.

A roster lists the workers joining a union organisation; each row must point to the
worker's signed application form (入会申请书) before the county federation (县总工会)
approves the admission. The columns are declared once, in ``TEMPLATE_COLUMNS``; the
reader, the row validator, both writers and the API's template description all use it.

Header cells are written as ``姓名(name)``. On reading, a header cell matches a column
when it equals the code, the Chinese header or ``中文(code)``, ignoring spaces, case,
full-width characters and a leading ``*`` (the "required" mark of many templates).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, BinaryIO, TextIO, TypeVar

import phonenumbers
from python_calamine import CalamineWorkbook

from gonghui_shared.identity import (
    _PERSONAL_PHONE_TYPES,  # the one definition of a number that reaches a person
    IdNumber,
    InvalidIdNumber,
    InvalidPhone,
    normalize_phone,
    parse_id_number,
)
from gonghui_shared.vocabulary import (
    HouseholdType,
    LabelledEnum,
    MemberCategory,
    NewEmploymentSubtype,
)


@dataclass(frozen=True, slots=True)
class RosterColumn:
    """One column of the roster template."""

    code: str
    header_zh: str
    required: bool
    description: str
    export_only: bool = False
    required_when: str | None = None

    @property
    def header(self) -> str:
        """The header cell as written to files: ``姓名(name)``."""
        return f"{self.header_zh}({self.code})"


TEMPLATE_COLUMNS: tuple[RosterColumn, ...] = (
    RosterColumn(
        "seq",
        "序号",
        False,
        "Row number on the paper roster; informative only. 纸质花名册序号，仅供参考。",
    ),
    RosterColumn(
        "name",
        "姓名",
        True,
        "Full name as on the identity card, 1-50 characters. 与身份证一致的姓名。",
    ),
    RosterColumn(
        "id_number",
        "公民身份号码",
        True,
        "18-digit resident identity card number; enter it as text so Excel keeps every digit. "
        "18位公民身份号码，请以文本格式录入。",
    ),
    RosterColumn(
        "phone",
        "手机号码",
        True,
        "Mobile number, or a fixed line with its area code (0871-65123456). "
        "手机号码或带区号的固定电话。",
    ),
    RosterColumn(
        "household_type",
        "户籍类型",
        True,
        "Household registration: 城镇 (urban, 非农业) or 农村 (rural, 农业). "
        "户籍类型：城镇或农村。",
    ),
    RosterColumn(
        "category",
        "会员类别",
        True,
        "Member category: " + MemberCategory.choices() + ". 会员类别。",
    ),
    RosterColumn(
        "subtype",
        "新就业形态类型",
        False,
        "Only for new-employment-form workers, and then required: "
        + NewEmploymentSubtype.choices()
        + ". 仅新就业形态劳动者填写，且必填。",
        required_when="category=new_employment",
    ),
    RosterColumn(
        "employer", "工作单位", False, "Employer or platform, if any. 工作单位或所在平台（如有）。"
    ),
    RosterColumn(
        "form_ref",
        "入会申请书编号",
        True,
        "Reference number of the worker's signed application form (入会申请书). "
        "本人签字的入会申请书编号。",
    ),
    RosterColumn(
        "member_no",
        "会员编号",
        False,
        "Member number assigned after approval; filled on export, ignored on import. "
        "批准后生成，导入时忽略。",
        export_only=True,
    ),
    RosterColumn(
        "org_name",
        "所属工会",
        False,
        "Union organisation the member belongs to; filled on export, ignored on import. "
        "导出时填写，导入时忽略。",
        export_only=True,
    ),
)

COLUMNS_BY_CODE: dict[str, RosterColumn] = {column.code: column for column in TEMPLATE_COLUMNS}
REQUIRED_COLUMNS: tuple[str, ...] = tuple(
    column.code for column in TEMPLATE_COLUMNS if column.required
)

# Columns whose values are long digit strings that Excel turns into numbers.
_TEXT_COLUMNS = frozenset({"id_number", "phone"})
# Characters that make a spreadsheet treat a cell as a formula (CSV/formula injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_MAX_NAME = 50
_MAX_EMPLOYER = 200
_MAX_FORM_REF = 64
# How far down the sheet to look for the header, past title rows such as "XX工会会员花名册".
_HEADER_SEARCH_ROWS = 10

_FILE_ERROR_MESSAGES_ZH = {
    "unsupported_file_type": "不支持的文件类型，请上传 .xlsx 或 .csv 文件",
    "unreadable_file": "无法读取文件，文件可能已损坏",
    "empty_file": "文件中没有表头行",
    "missing_columns": "缺少必填列",
    "duplicate_columns": "存在重复的列",
}


class RosterFileError(ValueError):
    """The file as a whole cannot be read as a roster."""

    def __init__(
        self, code: str, message: str, message_zh: str = "", columns: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.message_zh = message_zh or _FILE_ERROR_MESSAGES_ZH.get(code, message)
        self.columns = list(columns)


@dataclass(frozen=True, slots=True)
class RosterWarning:
    """A problem that does not stop the import, such as an unknown column."""

    code: str
    header: str
    message: str
    message_zh: str


@dataclass(frozen=True, slots=True)
class RosterRow:
    """One non-empty data row; ``row_number`` is the spreadsheet row (the header is row 1).

    ``numeric`` names the columns whose cell was a number rather than text, so that a
    validation error can explain that Excel has rounded a long number.
    """

    row_number: int
    values: dict[str, str]
    numeric: frozenset[str] = frozenset()


@dataclass(slots=True)
class RosterFile:
    """A roster read from a file: recognised columns (codes, file order), warnings, rows."""

    columns: list[str]
    warnings: list[RosterWarning]
    rows: list[RosterRow]
    header_row: int = 1


@dataclass(frozen=True, slots=True)
class RowError:
    """A problem with one cell of one row."""

    row: int
    column: str
    code: str
    message: str
    message_zh: str = ""


@dataclass(frozen=True, slots=True)
class ApplicantData:
    """A validated roster row: one worker applying to join the union."""

    name: str
    id: IdNumber
    phone: str
    household_type: HouseholdType
    category: MemberCategory
    subtype: NewEmploymentSubtype | None
    employer: str | None
    form_ref: str


def template_description() -> list[dict[str, Any]]:
    """The template's columns as plain dicts, for the API and the import screen."""
    return [
        {
            "code": column.code,
            "header_zh": column.header_zh,
            "header": column.header,
            "required": column.required,
            "required_when": column.required_when,
            "export_only": column.export_only,
            "description": column.description,
        }
        for column in TEMPLATE_COLUMNS
    ]


# ---------------------------------------------------------------- reading


def _fold_header(text: str) -> str:
    """Header text without whitespace, full-width forms, case or a leading required mark."""
    folded = "".join(unicodedata.normalize("NFKC", text).split()).casefold()
    return folded.lstrip("*")


_HEADER_LOOKUP: dict[str, str] = {}
for _column in TEMPLATE_COLUMNS:
    for _variant in (_column.code, _column.header_zh, _column.header):
        _HEADER_LOOKUP[_fold_header(_variant)] = _column.code


def match_header(cell: str) -> str | None:
    """The column code a header cell names, or None."""
    return _HEADER_LOOKUP.get(_fold_header(cell))


def _number_text(value: float | Decimal) -> str:
    """A number as Excel displays it in a text-formatted cell: no exponent, no trailing ``.0``."""
    if isinstance(value, float):
        value = Decimal(repr(value))
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _cell_text(value: object) -> str:
    """A cell value as the text the user sees."""
    if value is None:
        return ""
    if isinstance(value, str):
        text = value.strip()
        # Undo the formula-injection escape written by write_roster_csv.
        if len(text) > 1 and text[0] == "'" and text[1] in "=+-@":
            text = text[1:]
        return text
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (float, Decimal)):
        return _number_text(value)
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    return str(value).strip()


def _xlsx_rows(data: bytes) -> Iterator[Sequence[object]]:
    """Rows of the first sheet, including empty ones so positions match row numbers.

    Read with calamine, which takes a 100,000-row roster in a fraction of a second where
    openpyxl takes many; a workbook calamine cannot read is tried with openpyxl.
    """
    try:
        workbook = CalamineWorkbook.from_filelike(io.BytesIO(data))
        if not workbook.sheet_names:
            return iter(())
        # From A1, empty rows and all, so positions are the sheet's row numbers.
        rows: Sequence[Sequence[object]] = workbook.get_sheet_by_index(0).to_python(
            skip_empty_area=False
        )
    except Exception:  # noqa: BLE001 - calamine raises several types; openpyxl decides
        return _openpyxl_rows(data)
    if any(_imprecise(value) for row in rows for value in row):
        # An ID number typed as a number: calamine has it as a double, its last digits
        # gone; openpyxl reads the digits the file holds.
        return _openpyxl_rows(data)
    return iter(rows)


def _imprecise(value: object) -> bool:
    """A number too large for a double to hold every digit of."""
    return type(value) in (int, float) and abs(value) >= _EXACT_DOUBLE  # type: ignore[arg-type]


_EXACT_DOUBLE = 2**53


def _openpyxl_rows(data: bytes) -> Iterator[Sequence[object]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged file
        raise RosterFileError(
            "unreadable_file", f"cannot open the file as an xlsx workbook ({type(exc).__name__})"
        ) from exc
    try:
        if not workbook.worksheets:
            return
        sheet = workbook.worksheets[0]
        # Trust the cells, not the <dimension> some writers get wrong.
        sheet.reset_dimensions()
        try:
            yield from sheet.iter_rows(values_only=True)
        except Exception as exc:
            raise RosterFileError(
                "unreadable_file", f"cannot read the first sheet ({type(exc).__name__})"
            ) from exc
    finally:
        workbook.close()


def _decode_csv(data: bytes) -> str:
    """Decode CSV bytes: UTF-8 (with or without BOM) first, then GB18030 as Excel in China saves."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise RosterFileError(
            "unreadable_file",
            "the csv file is neither UTF-8 nor GB18030 (GBK) text",
            "CSV 文件编码无法识别（应为 UTF-8 或 GBK）",
        ) from exc


def _csv_rows(data: bytes) -> Iterator[Sequence[object]]:
    """Records of a CSV file, one per spreadsheet row."""
    text = _decode_csv(data)
    first_line = text.split("\n", 1)[0]
    delimiter = "\t" if "\t" in first_line and "," not in first_line else ","
    try:
        yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    except csv.Error as exc:
        raise RosterFileError(
            "unreadable_file", f"malformed csv file ({exc})", "CSV 文件格式错误"
        ) from exc


def _find_header(rows: Iterator[Sequence[object]]) -> tuple[int, list[str]]:
    """Consume rows up to the header and return its row number and cell texts.

    The header is the first row naming at least two template columns within the first
    ``_HEADER_SEARCH_ROWS`` non-empty rows (title rows above it are common); failing
    that, the first non-empty row, so the caller reports what is missing.
    """
    first: tuple[int, list[str]] | None = None
    non_empty = 0
    for row_number, cells in enumerate(rows, start=1):
        texts = [_cell_text(cell) for cell in cells]
        if not any(texts):
            continue
        if first is None:
            first = (row_number, texts)
        if sum(1 for text in texts if text and match_header(text)) >= 2:
            return row_number, texts
        non_empty += 1
        if non_empty >= _HEADER_SEARCH_ROWS:
            break
    if first is None:
        raise RosterFileError("empty_file", "the file has no header row", "文件为空，没有表头行")
    return first


def read_roster(data: bytes, filename: str) -> RosterFile:
    """Read a roster from the bytes of an .xlsx (first sheet) or .csv file."""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension in ("xlsx", "xlsm"):
        source = _xlsx_rows(data)
    elif extension == "csv":
        source = _csv_rows(data)
    else:
        hint = " (save .xls files as .xlsx first)" if extension == "xls" else ""
        raise RosterFileError(
            "unsupported_file_type",
            f"unsupported file type {extension or filename!r}: upload .xlsx or .csv{hint}",
            "不支持的文件类型，请上传 .xlsx 或 .csv 文件"
            + ("（.xls 请先另存为 .xlsx）" if hint else ""),
        )
    rows = iter(source)
    try:
        return _read_rows(rows)
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def _read_rows(rows: Iterator[Sequence[object]]) -> RosterFile:
    """Build the roster from an iterator of raw rows, header first."""
    header_row, header = _find_header(rows)

    positions: list[tuple[int, str]] = []
    seen: dict[str, str] = {}
    warnings: list[RosterWarning] = []
    duplicates: list[str] = []
    for index, text in enumerate(header):
        if not text:
            continue
        code = match_header(text)
        if code is None:
            warnings.append(
                RosterWarning(
                    "unknown_column",
                    text,
                    f"column {text!r} is not part of the template and is ignored",
                    f"“{text}”不是模板中的列，已忽略",
                )
            )
        elif code in seen:
            duplicates.append(code)
        else:
            seen[code] = text
            positions.append((index, code))
    if duplicates:
        raise RosterFileError(
            "duplicate_columns",
            "columns appear more than once: " + ", ".join(duplicates),
            "以下列重复出现：" + "、".join(COLUMNS_BY_CODE[c].header_zh for c in duplicates),
            columns=duplicates,
        )
    missing = [code for code in REQUIRED_COLUMNS if code not in seen]
    if missing:
        raise RosterFileError(
            "missing_columns",
            "missing required columns: " + ", ".join(COLUMNS_BY_CODE[c].header for c in missing),
            "缺少必填列：" + "、".join(COLUMNS_BY_CODE[c].header for c in missing),
            columns=missing,
        )

    out: list[RosterRow] = []
    for row_number, cells in enumerate(rows, start=header_row + 1):
        width = len(cells)
        if not any(cell is not None and cell != "" for cell in cells):
            continue  # the common empty row, without converting its cells
        values: dict[str, str] = {}
        numeric: set[str] = set()
        for index, code in positions:
            cell = cells[index] if index < width else None
            if isinstance(cell, (int, float, Decimal)) and not isinstance(cell, bool):
                numeric.add(code)
            values[code] = _cell_text(cell)
        if not any(values.values()) and not any(_cell_text(cell) for cell in cells):
            continue
        out.append(RosterRow(row_number, values, frozenset(numeric)))
    return RosterFile(
        columns=[code for _, code in positions], warnings=warnings, rows=out, header_row=header_row
    )


# ---------------------------------------------------------------- validation


def _required_error(row: int, code: str) -> RowError:
    """The error for an empty required cell."""
    header = COLUMNS_BY_CODE[code].header_zh
    return RowError(row, code, "required", f"{code} is required", f"{header}为必填项")


_E = TypeVar("_E", bound=LabelledEnum)


def _parse_choice(
    enum: type[_E], row: int, code: str, text: str, errors: list[RowError]
) -> _E | None:
    """Parse a vocabulary cell, recording an ``invalid_choice`` error on failure."""
    try:
        return enum.parse(text)
    except ValueError:
        header = COLUMNS_BY_CODE[code].header_zh
        labels = "、".join(member.label_zh for member in enum)
        errors.append(
            RowError(
                row,
                code,
                "invalid_choice",
                f"{text!r} is not a valid {code}; allowed: {enum.choices()}",
                f"{header}“{text}”无效，可选：{labels}",
            )
        )
        return None


def _bounded_text(row: int, code: str, text: str, limit: int, errors: list[RowError]) -> bool:
    """Record a ``too_long`` error when the text exceeds ``limit`` characters."""
    if len(text) > limit:
        header = COLUMNS_BY_CODE[code].header_zh
        errors.append(
            RowError(
                row,
                code,
                "too_long",
                f"{code} is longer than {limit} characters",
                f"{header}超过{limit}个字符",
            )
        )
        return False
    return True


_MAINLAND = 86  # one region (CN) has this calling code
# Eleven digits from 1, bare or after +86: what phonenumbers parses to +86 and those digits.
# (It strips an IP-dialling prefix such as 17951 only where the whole would not be a
# mainland number, and `1` and ten digits always is one.)
_PLAIN_MAINLAND = re.compile(r"(?:\+86)?(1\d{10})")


def roster_phone(text: str) -> str:
    """`normalize_phone`'s answer, at under half its cost for the numbers a roster holds.

    `normalize_phone` parses the text, asks whether the number is valid and then its
    type. A plain mainland number (`1` and ten digits) parses to +86 and those digits, so
    it is built without parsing; and for a +86 number (one region) a personal type
    already means valid, so such numbers are accepted on the type alone. Anything else,
    and every refusal, goes through `normalize_phone` itself, which says why.
    """
    cleaned = unicodedata.normalize("NFKC", text).strip()
    plain = _PLAIN_MAINLAND.fullmatch(cleaned)
    if plain:
        parsed = phonenumbers.PhoneNumber(country_code=_MAINLAND, national_number=int(plain[1]))
    else:
        try:
            parsed = phonenumbers.parse(cleaned, "CN")
        except phonenumbers.NumberParseException:
            return normalize_phone(text)
    if (
        parsed.country_code == _MAINLAND
        and phonenumbers.number_type(parsed) in _PERSONAL_PHONE_TYPES
    ):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return normalize_phone(text)


def validate_row(row: RosterRow) -> tuple[ApplicantData | None, list[RowError]]:
    """Validate every column of a row; return the applicant or all the row's errors."""
    number = row.row_number
    values = row.values
    errors: list[RowError] = []

    def text(code: str) -> str:
        return values.get(code, "").strip()

    name = text("name")
    if not name:
        errors.append(_required_error(number, "name"))
    else:
        _bounded_text(number, "name", name, _MAX_NAME, errors)

    id_number: IdNumber | None = None
    id_text = text("id_number")
    if not id_text:
        errors.append(_required_error(number, "id_number"))
    else:
        try:
            id_number = parse_id_number(id_text)
        except InvalidIdNumber as exc:
            message, message_zh = exc.message, exc.message_zh
            if "id_number" in row.numeric:
                message += (
                    "; the cell is a number, so Excel may have rounded its last digits:"
                    " use a text column"
                )
                message_zh += (
                    "；该单元格为数值格式，Excel 可能已将末几位改为0，"
                    "请将该列设为文本格式后重新录入"
                )
            errors.append(RowError(number, "id_number", exc.code, message, message_zh))

    phone: str | None = None
    phone_text = text("phone")
    if not phone_text:
        errors.append(_required_error(number, "phone"))
    else:
        try:
            phone = roster_phone(phone_text.lstrip("'"))
        except InvalidPhone as exc:
            errors.append(RowError(number, "phone", "invalid", exc.message, exc.message_zh))

    household_type: HouseholdType | None = None
    if not text("household_type"):
        errors.append(_required_error(number, "household_type"))
    else:
        household_type = _parse_choice(
            HouseholdType, number, "household_type", text("household_type"), errors
        )

    category: MemberCategory | None = None
    if not text("category"):
        errors.append(_required_error(number, "category"))
    else:
        category = _parse_choice(MemberCategory, number, "category", text("category"), errors)

    subtype: NewEmploymentSubtype | None = None
    subtype_text = text("subtype")
    if category is MemberCategory.NEW_EMPLOYMENT and not subtype_text:
        errors.append(
            RowError(
                number,
                "subtype",
                "required",
                "subtype is required for new-employment-form workers",
                "新就业形态劳动者须填写新就业形态类型",
            )
        )
    elif subtype_text:
        subtype = _parse_choice(NewEmploymentSubtype, number, "subtype", subtype_text, errors)
        if category is not None and category is not MemberCategory.NEW_EMPLOYMENT:
            errors.append(
                RowError(
                    number,
                    "subtype",
                    "not_allowed",
                    "subtype must be empty unless category is "
                    f"{MemberCategory.NEW_EMPLOYMENT.value}",
                    "仅新就业形态劳动者可填写新就业形态类型",
                )
            )

    employer = text("employer") or None
    if employer is not None:
        _bounded_text(number, "employer", employer, _MAX_EMPLOYER, errors)

    form_ref = text("form_ref")
    if not form_ref:
        errors.append(_required_error(number, "form_ref"))
    else:
        _bounded_text(number, "form_ref", form_ref, _MAX_FORM_REF, errors)

    # The None checks only narrow types: each None value has recorded an error.
    if errors or id_number is None or phone is None or household_type is None or category is None:
        return None, errors
    return (
        ApplicantData(
            name=name,
            id=id_number,
            phone=phone,
            household_type=household_type,
            category=category,
            subtype=subtype,
            employer=employer,
            form_ref=form_ref,
        ),
        [],
    )


def validate_rows(
    rows: Iterable[RosterRow],
) -> tuple[list[tuple[int, ApplicantData]], list[RowError]]:
    """Validate every row and flag a person listed twice in the same roster.

    Returns the valid applicants with their row numbers, and all errors in row order.
    """
    applicants: list[tuple[int, ApplicantData]] = []
    errors: list[RowError] = []
    first_row_of: dict[str, int] = {}
    for row in rows:
        applicant, row_errors = validate_row(row)
        if applicant is not None:
            first = first_row_of.setdefault(applicant.id.number, row.row_number)
            if first != row.row_number:
                row_errors = [
                    RowError(
                        row.row_number,
                        "id_number",
                        "duplicate",
                        f"the same ID number is already on row {first}",
                        f"与第{first}行的公民身份号码重复",
                    )
                ]
            else:
                applicants.append((row.row_number, applicant))
        errors.extend(row_errors)
    return applicants, errors


# ---------------------------------------------------------------- writing


def _ordered(row: dict[str, str]) -> list[str]:
    """The row's values in template order; unknown keys are ignored, missing ones empty."""
    return [
        "" if row.get(column.code) is None else str(row.get(column.code))
        for column in TEMPLATE_COLUMNS
    ]


def write_roster_xlsx(rows: Iterable[dict[str, str]], out: BinaryIO) -> None:
    """Write a roster workbook (also the blank template when ``rows`` is empty).

    The ID number and phone columns are formatted as text, so neither the written
    values nor what users type later are turned into rounded numbers; category,
    household type and subtype get drop-down lists of the Chinese labels.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("花名册")
    widths = {
        "name": 12,
        "id_number": 22,
        "phone": 18,
        "employer": 28,
        "org_name": 28,
        "form_ref": 18,
    }
    choices: dict[str, type[LabelledEnum]] = {
        "household_type": HouseholdType,
        "category": MemberCategory,
        "subtype": NewEmploymentSubtype,
    }
    for index, column in enumerate(TEMPLATE_COLUMNS, start=1):
        letter = get_column_letter(index)
        dimension = sheet.column_dimensions[letter]
        dimension.width = widths.get(column.code, max(12, len(column.header) + 4))
        if column.code in _TEXT_COLUMNS:
            dimension.number_format = "@"
        if column.code in choices:
            labels = ",".join(member.label_zh for member in choices[column.code])
            validation = DataValidation(type="list", formula1=f'"{labels}"', allow_blank=True)
            validation.add(f"{letter}2:{letter}1048576")
            sheet.data_validations.append(validation)
    sheet.freeze_panes = "A2"

    bold = Font(bold=True)
    header = []
    for column in TEMPLATE_COLUMNS:
        cell = WriteOnlyCell(sheet, value=column.header)
        cell.font = bold
        header.append(cell)
    sheet.append(header)

    text_positions = frozenset(
        i for i, column in enumerate(TEMPLATE_COLUMNS) if column.code in _TEXT_COLUMNS
    )
    for row in rows:
        cells: list[Any] = []
        for index, value in enumerate(_ordered(row)):
            if index in text_positions or value.startswith("="):
                cell = WriteOnlyCell(sheet, value=value or None)
                if value:
                    # A string starting with "=" would otherwise be stored as a formula.
                    cell.data_type = "s"
                if index in text_positions:
                    cell.number_format = "@"
                cells.append(cell)
            else:
                cells.append(value or None)
        sheet.append(cells)
    workbook.save(out)


def _csv_safe(code: str, value: str) -> str:
    """Guard a value against Excel's number and formula interpretation of CSV cells."""
    if not value:
        return value
    if code in _TEXT_COLUMNS:
        # A leading tab makes Excel keep 18-digit numbers as text; read_roster strips it.
        return "\t" + value
    if value.startswith(_FORMULA_START):
        return "'" + value
    return value


def write_roster_csv(rows: Iterable[dict[str, str]], out: TextIO) -> None:
    """Write a roster as UTF-8 CSV with a BOM so Excel opens it; open ``out`` with ``newline=""``.

    Excel would round the ID number and drop the ``+`` of the phone, so those cells
    start with a tab; cells that would read as formulas get a leading apostrophe.
    Both are undone by ``read_roster``.
    """
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow([column.header for column in TEMPLATE_COLUMNS])
    codes = [column.code for column in TEMPLATE_COLUMNS]
    for row in rows:
        writer.writerow(
            [_csv_safe(code, value) for code, value in zip(codes, _ordered(row), strict=True)]
        )


__all__ = [
    "COLUMNS_BY_CODE",
    "REQUIRED_COLUMNS",
    "TEMPLATE_COLUMNS",
    "ApplicantData",
    "RosterColumn",
    "RosterFile",
    "RosterFileError",
    "RosterRow",
    "RosterWarning",
    "RowError",
    "match_header",
    "read_roster",
    "template_description",
    "validate_row",
    "validate_rows",
    "write_roster_csv",
    "write_roster_xlsx",
]
