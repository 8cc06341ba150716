"""Completing a session (结业) and its certificates (培训证书): numbers, verification, revocation.

A certificate number is unique nationally by its format,
`GHPX-<county code>-<year>-<sequence>-<check>`: the host org's county (first six
digits of its region code), the issue year in China, a per-county-and-year
sequence, and an ISO 7064 MOD 11-2 check character over those 16 digits (the
same scheme as the resident ID number), so a mistyped number is caught before
any lookup.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from stdnum.iso7064 import mod_11_2

from gonghui_shared.auth import Principal
from gonghui_shared.bus.outbox import OutboxItem, record_events
from gonghui_shared.clock import CHINA
from gonghui_shared.contracts.training import (
    CertificateIssued,
    CertificateRevoked,
    SessionCompleted,
)
from gonghui_shared.errors import Conflict, Forbidden, NotFound, OutOfScope, Unprocessable
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Action, Role
from training.base import outbox
from training.budget.schemas import yuan
from training.certificates import repository
from training.certificates.models import Certificate
from training.certificates.schemas import (
    CertificateRead,
    CertificateVerification,
    SessionCompletionRead,
)
from training.courses.service import get_course
from training.events.publish import publish
from training.replicas.service import OrgNotKnown, org_in_scope
from training.sessions.models import SessionStatus, TrainingSession
from training.sessions.service import get_session_in_scope, require_status, session_days

PREFIX = "GHPX"  # 工会培训 (GongHui PeiXun)
_SEQUENCE_DIGITS = 6
_MAX_SEQUENCE = 10**_SEQUENCE_DIGITS - 1
_NUMBER = re.compile(rf"^{PREFIX}-(\d{{6}})-(\d{{4}})-(\d{{6}})-([0-9X])$")


class InvalidCertificateNumber(Unprocessable):
    code = "invalid_certificate_number"
    message = "This is not a certificate number (GHPX-county-year-sequence-check)"
    message_zh = "证书编号格式或校验位不正确"


class CertificateNotFound(NotFound):
    code = "certificate_not_found"
    message = "No certificate has this number"
    message_zh = "证书不存在"


class CertificateAlreadyRevoked(Conflict):
    code = "certificate_already_revoked"
    message = "The certificate has already been revoked"
    message_zh = "该证书已被撤销"


class CertificateNumbersExhausted(Conflict):
    code = "certificate_numbers_exhausted"
    message = "The county has used every certificate number of this year"
    message_zh = "本县本年度证书编号已用完"


class HostRegionUnknown(Conflict):
    code = "host_org_region_unknown"
    message = "The host organisation has no county region code to number certificates with"
    message_zh = "主办工会缺少县级行政区划代码，无法编制证书编号"


# ---------------------------------------------------------------- numbers


@dataclass(frozen=True, slots=True)
class CertificateNumber:
    """A well-formed certificate number, check character verified."""

    county_code: str
    year: int
    sequence: int
    check: str

    def __str__(self) -> str:
        return f"{PREFIX}-{self.county_code}-{self.year:04d}-{self.sequence:06d}-{self.check}"


def format_certificate_number(county_code: str, year: int, sequence: int) -> str:
    """The number of the `sequence`-th certificate of a county and year, with its check."""
    digits = f"{county_code}{year:04d}{sequence:0{_SEQUENCE_DIGITS}d}"
    return str(CertificateNumber(county_code, year, sequence, mod_11_2.calc_check_digit(digits)))


def parse_certificate_number(text: str) -> CertificateNumber:
    """Validate a certificate number; 422 `invalid_certificate_number` if malformed or mistyped.

    Full-width characters, surrounding spaces and a lower-case prefix or `x` are
    tolerated, as people copy numbers from paper and phones.
    """
    cleaned = unicodedata.normalize("NFKC", text).strip().upper() if isinstance(text, str) else ""
    found = _NUMBER.match(cleaned)
    if found is None:
        raise InvalidCertificateNumber(details={"field": "number"})
    county_code, year, sequence, check = found.groups()
    if int(sequence) == 0 or mod_11_2.calc_check_digit(county_code + year + sequence) != check:
        raise InvalidCertificateNumber(
            "The certificate number's check character does not match; check for typing errors",
            "证书编号校验位不正确，请核对是否录入有误",
            details={"field": "number"},
        )
    return CertificateNumber(county_code, int(year), int(sequence), check)


# Two-character surnames (复姓) are shown whole, like a one-character surname: the
# verification page shows the surname and hides the given name.
_COMPOUND_SURNAMES = frozenset(
    {
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
        "令狐",
        "独孤",
        "南宫",
        "西门",
        "轩辕",
        "端木",
        "百里",
        "呼延",
        "东郭",
        "澹台",
        "公冶",
        "太史",
        "申屠",
        "闻人",
        "万俟",
        "赫连",
        "钟离",
        "濮阳",
        "淳于",
        "单于",
        "仲孙",
        "司空",
        "亓官",
        "公羊",
        "左丘",
        "拓跋",
        "第五",
    }
)


def mask_name(name: str) -> str:
    """李明 -> 李*, 欧阳娜娜 -> 欧阳**: the surname, then one star per other character."""
    name = name.strip()
    if not name:
        return ""
    shown = 2 if len(name) > 2 and name[:2] in _COMPOUND_SURNAMES else 1
    return name[:shown] + "*" * (len(name) - shown)


def meets_rule(attended: int, days: int, min_rate: float) -> bool:
    """Attended share of the session days ≥ the course's rate, compared exactly (4/5 ≥ 0.8)."""
    if days <= 0:
        return False
    return Fraction(attended, days) >= Fraction(repr(float(min_rate)))


# ---------------------------------------------------------------- completion


async def complete_session(
    session: AsyncSession, principal: Principal, session_id: str
) -> SessionCompletionRead:
    """End a session: decide each enrolment by the course's rule, issue certificates, publish."""
    # Locked: a concurrent completion (or cancellation) waits, then sees the new state.
    ts = await get_session_in_scope(
        session, principal, session_id, Action.sessions_write, lock=True
    )
    require_status(ts, SessionStatus.completed, SessionStatus.in_progress)
    course = await get_course(session, ts.course_id)
    days = len(session_days(ts))
    enrolled = await repository.enrolled_with_attendance(session, ts.id, ts.first_day, ts.last_day)
    done = [row for row in enrolled if meets_rule(row.attended, days, course.min_attendance_rate)]
    await repository.close_enrolments(session, ts.id, [row.id for row in done])
    now = datetime.now(UTC)
    waitlist_cancelled = await repository.cancel_waitlist(session, ts.id, now)
    ts.status = SessionStatus.completed.value
    ts.completed_at = now
    await session.flush()

    person_times, unique_persons = await repository.attendance_figures(session, ts.id)
    spent = await repository.spent_fen(session, ts.id)
    await publish(
        session,
        SessionCompleted(
            session_id=ts.id,
            course_id=ts.course_id,
            course_category=ts.course_category,
            host_org_id=ts.host_org_id,
            enrolled=len(enrolled),
            completed=len(done),
            person_times=person_times,
            unique_persons=unique_persons,
            spent_fen=spent,
        ),
        aggregate_id=ts.id,
        org_path=ts.host_org_path,
    )
    numbers = await _issue(session, ts, done, now) if course.leads_to_certificate else []
    return SessionCompletionRead(
        session_id=ts.id,
        course_id=ts.course_id,
        course_category=ts.course_category,
        host_org_id=ts.host_org_id,
        status=ts.status,
        completed_at=now,
        days=days,
        min_attendance_rate=course.min_attendance_rate,
        enrolled=len(enrolled),
        completed=len(done),
        not_completed=len(enrolled) - len(done),
        waitlist_cancelled=waitlist_cancelled,
        person_times=person_times,
        unique_persons=unique_persons,
        spent=yuan(spent),
        certificates=numbers,
    )


async def _county_code(session: AsyncSession, ts: TrainingSession) -> str:
    host = await repository.org(session, ts.host_org_id)
    county = host.region_code[:6] if host else ""
    if len(county) != 6 or not county.isdigit() or county == "000000":
        raise HostRegionUnknown(details={"host_org_id": ts.host_org_id})
    return county


async def _issue(
    session: AsyncSession, ts: TrainingSession, completed: Sequence[Any], now: datetime
) -> list[str]:
    """One certificate per completed enrolment, numbered from one reservation of the sequence."""
    if not completed:
        return []
    county = await _county_code(session, ts)
    issued_on = now.astimezone(CHINA).date()
    last = await repository.reserve_numbers(session, county, issued_on.year, len(completed))
    if last > _MAX_SEQUENCE:
        # Raising rolls the reservation back with the rest of the transaction.
        raise CertificateNumbersExhausted(details={"county_code": county, "year": issued_on.year})
    first = last - len(completed) + 1
    rows: list[dict[str, Any]] = []
    events: list[OutboxItem] = []
    for offset, enrolment in enumerate(completed):
        certificate_id = new_id()
        number = format_certificate_number(county, issued_on.year, first + offset)
        rows.append(
            {
                "id": certificate_id,
                "number": number,
                "enrolment_id": enrolment.id,
                "session_id": ts.id,
                "course_id": ts.course_id,
                "course_category": ts.course_category,
                "host_org_path": ts.host_org_path,
                "person_key": enrolment.person_key,
                "member_no": enrolment.member_no,
                "worker_category": enrolment.worker_category,
                "holder_name": enrolment.name,
                "issued_on": issued_on,
                "status": "valid",
                "created_at": now,
                "updated_at": now,
            }
        )
        events.append(
            OutboxItem(
                CertificateIssued(
                    certificate_id=certificate_id,
                    number=number,
                    session_id=ts.id,
                    course_id=ts.course_id,
                    course_category=ts.course_category,
                    host_org_id=ts.host_org_id,
                    person_key=enrolment.person_key,
                    member_no=enrolment.member_no,
                    worker_category=enrolment.worker_category,
                    issued_on=issued_on,
                ),
                certificate_id,
                ts.host_org_path,
            )
        )
    await repository.insert_certificates(session, rows)
    await record_events(session, outbox, events)
    return [row["number"] for row in rows]


# ---------------------------------------------------------------- certificates


async def verify(session: AsyncSession, text: str) -> CertificateVerification:
    """What anyone may learn about a certificate: never the ID number, phone or member number."""
    number = parse_certificate_number(text)
    found = await repository.verification(session, str(number))
    if found is None:
        raise CertificateNotFound(details={"field": "number"})
    certificate, course_title, hours, issuer = found
    revoked = certificate.status == "revoked"
    return CertificateVerification(
        valid=not revoked,
        number=certificate.number,
        status=certificate.status,
        holder=mask_name(certificate.holder_name),
        course_title=course_title,
        course_category=certificate.course_category,
        hours=hours,
        issued_on=certificate.issued_on,
        issuer=issuer or "",
        revoked_on=(
            certificate.revoked_at.astimezone(CHINA).date()
            if revoked and certificate.revoked_at
            else None
        ),
        revoked_reason=certificate.revoked_reason if revoked else None,
    )


async def revoke(
    session: AsyncSession, principal: Principal, text: str, reason: str
) -> Certificate:
    """Revoke a valid certificate with a reason (county and platform admins, in scope)."""
    principal.require(Action.certificates_revoke)
    number = parse_certificate_number(text)
    certificate = await repository.by_number(session, str(number), lock=True)
    if certificate is None:
        raise CertificateNotFound(details={"field": "number"})
    principal.require(Action.certificates_revoke, certificate.host_org_path)
    if certificate.status == "revoked":
        raise CertificateAlreadyRevoked()
    certificate.status = "revoked"
    certificate.revoked_at = datetime.now(UTC)
    certificate.revoked_reason = reason
    await session.flush()
    await publish(
        session,
        CertificateRevoked(
            certificate_id=certificate.id,
            number=certificate.number,
            host_org_id=await repository.host_org_id(session, certificate.session_id),
            reason=reason,
        ),
        aggregate_id=certificate.id,
        org_path=certificate.host_org_path,
    )
    return certificate


def to_read(certificate: Certificate) -> CertificateRead:
    return CertificateRead.model_validate(certificate)


async def list_certificates(
    session: AsyncSession,
    principal: Principal,
    *,
    org_id: str | None,
    member_no: str | None,
    session_id: str | None,
    cursor: str | None,
    limit: int,
) -> Sequence[Certificate]:
    """Certificates in scope; a member sees only their own, wherever they were trained."""
    principal.require(Action.sessions_read)
    within: str | None
    if principal.role is Role.member:
        if not principal.member_no or (member_no and member_no != principal.member_no):
            raise Forbidden("A member sees only their own certificates", "会员只能查看本人的证书")
        member_no = principal.member_no
        within = None
        if org_id:
            org = await repository.org(session, org_id)
            if org is None:
                raise OrgNotKnown(details={"field": "org_id"})
            within = org.path
        # No session scope check: a member keeps the certificates of a former org's sessions.
    else:
        if org_id:
            within = (await org_in_scope(session, principal, org_id, Action.sessions_read)).path
        elif principal.role is Role.platform_admin:
            within = None
        elif principal.org_path:
            within = principal.org_path
        else:
            raise OutOfScope()
        if session_id:
            await get_session_in_scope(session, principal, session_id, Action.sessions_read)
    return await repository.list_certificates(
        session,
        within_path=within,
        member_no=member_no,
        session_id=session_id,
        cursor=cursor,
        limit=limit,
    )
