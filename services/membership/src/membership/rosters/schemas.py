"""Roster (花名册) import report and template description bodies."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class ExportFormat(StrEnum):
    xlsx = "xlsx"
    csv = "csv"


class ExportStatus(StrEnum):
    """Which members an export lists: one membership status, or `all`."""

    active = "active"
    withdrawn = "withdrawn"
    lapsed = "lapsed"
    expelled = "expelled"
    all = "all"


class TemplateColumnRead(BaseModel):
    code: str = Field(examples=["id_number"])
    header_zh: str = Field(examples=["公民身份号码"])
    header: str = Field(
        description="the header cell as written", examples=["公民身份号码(id_number)"]
    )
    required: bool
    required_when: str | None = Field(None, examples=["category=new_employment"])
    export_only: bool = Field(description="filled on export, ignored on import")
    description: str


class TemplateRead(BaseModel):
    """The roster template's columns, in file order."""

    columns: list[TemplateColumnRead]
    max_bytes: int = Field(description="largest upload accepted", examples=[20971520])
    file_types: list[str] = Field(examples=[["xlsx", "csv"]])


class RowIssue(BaseModel):
    """A problem with one cell of one row; `row` is the spreadsheet row (the header is row 1)."""

    row: int = Field(examples=[7])
    column: str = Field(examples=["id_number"])
    code: str = Field(examples=["checksum"])
    message: str
    message_zh: str


class FileWarning(BaseModel):
    """A problem that does not stop the import, such as a column outside the template."""

    code: str = Field(examples=["unknown_column"])
    header: str = Field(examples=["备注"])
    message: str
    message_zh: str


class PreviewRow(BaseModel):
    """A valid row as it would be stored; ID number and phone always masked."""

    row: int
    name: str
    id_number: str = Field(examples=["530921********1234"])
    phone: str = Field(examples=["138****8000"])
    gender: str
    birth_date: date
    household_type: str
    category: str
    subtype: str | None
    employer: str | None
    form_ref: str


class RosterImportReport(BaseModel):
    """What an import found and did; the same shape for a dry run and a real run."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dry_run": True,
                    "roster_id": None,
                    "rows_total": 3,
                    "rows_valid": 1,
                    "rows_invalid": 1,
                    "rows_duplicate": 1,
                    "rows_imported": 0,
                    "errors": [
                        {
                            "row": 3,
                            "column": "id_number",
                            "code": "checksum",
                            "message": "ID number check digit does not match",
                            "message_zh": "身份证号码校验位不正确，请核对是否录入有误",
                        },
                        {
                            "row": 4,
                            "column": "id_number",
                            "code": "already_member",
                            "message": "this person is already an active union member",
                            "message_zh": "此人已是在册工会会员",
                        },
                    ],
                    "errors_total": 2,
                    "warnings": [],
                    "preview": [],
                }
            ]
        }
    )

    dry_run: bool
    roster_id: str | None = Field(
        description="the new roster; null on a dry run or when nothing was written"
    )
    rows_total: int = Field(description="non-empty data rows in the file")
    rows_valid: int = Field(description="rows that can be (or were) imported")
    rows_invalid: int = Field(description="rows with at least one invalid cell")
    rows_duplicate: int = Field(
        description="valid rows whose person is earlier in the file, already a member, "
        "or has a pending application"
    )
    rows_imported: int = Field(description="applications written (0 on a dry run)")
    errors: list[RowIssue] = Field(description="per-cell errors in row order, at most 1,000")
    errors_total: int = Field(description="all errors, including any beyond the list")
    warnings: list[FileWarning]
    preview: list[PreviewRow] = Field(description="the first 20 valid rows")
