"""A person's data as stored: ID number and phone encrypted, hashed for lookup, masked for display.

Both a single application and a roster import go through `protect`, so the
columns are filled the same way whichever door a worker came in by.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Date, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gonghui_shared.identity import IdNumber
from gonghui_shared.pii import PiiCipher, mask_id_number, mask_phone


class PersonColumns:
    """The worker's own data, shared by an application and the membership it becomes."""

    name: Mapped[str] = mapped_column(String(50))
    id_number_encrypted: Mapped[str] = mapped_column(Text)
    # Indexed by each table as its queries need (`Member`, `Application`): an index no
    # query uses costs every row of a 100,000-row import a random B-tree insert.
    id_number_hash: Mapped[str] = mapped_column(String(64))
    id_number_masked: Mapped[str] = mapped_column(String(18))
    phone_encrypted: Mapped[str] = mapped_column(Text)
    # Keyed hash of the E.164 phone, for the gateway's login by phone; null only on rows
    # written before the column existed that the migration could not decrypt.
    phone_hash: Mapped[str | None] = mapped_column(String(64))
    phone_masked: Mapped[str] = mapped_column(String(20))
    gender: Mapped[str] = mapped_column(String(10))
    birth_date: Mapped[date] = mapped_column(Date)
    household_type: Mapped[str] = mapped_column(String(10))
    category: Mapped[str] = mapped_column(String(20))
    subtype: Mapped[str | None] = mapped_column(String(30))
    employer: Mapped[str | None] = mapped_column(String(200))


def protect(
    pii: PiiCipher, id_number: IdNumber, phone: str, *, id_number_hash: str | None = None
) -> dict[str, Any]:
    """Column values for a validated ID number and E.164 phone; `id_number_hash` when the
    caller has already hashed the number (a roster import looks every row up by it)."""
    return {
        "id_number_encrypted": pii.encrypt(id_number.number),
        "id_number_hash": id_number_hash or pii.lookup_hash(id_number.number),
        "id_number_masked": mask_id_number(id_number.number),
        "phone_encrypted": pii.encrypt(phone),
        "phone_hash": pii.lookup_hash(phone),
        "phone_masked": mask_phone(phone),
        "gender": id_number.gender.value,
        "birth_date": id_number.birth_date,
    }
