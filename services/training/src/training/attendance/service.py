"""Attendance (签到): one record per person per session day, by staff entry or QR scan.

Each record is one person-time (人次); unique persons are the distinct people among
the records. A QR check-in token is a short-lived HS256 JWT for one session day,
shown by the trainer as a QR code; a trainee scanning it checks in as themself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import jwt
import qrcode
import qrcode.image.svg
from sqlalchemy.ext.asyncio import AsyncSession

from gonghui_shared import keys
from gonghui_shared.auth import Principal
from gonghui_shared.clock import today_in_china
from gonghui_shared.contracts.training import Attended
from gonghui_shared.db import insert_unless_conflicting
from gonghui_shared.errors import Conflict, Forbidden, Unprocessable
from gonghui_shared.ids import new_id
from gonghui_shared.permissions import Action, Role
from training.attendance.models import Attendance
from training.attendance.schemas import AttendanceCreate, AttendanceRead, CheckinQr
from training.base import utcnow
from training.config import TrainingSettings
from training.enrolments import repository as enrolments_repository
from training.enrolments.models import Enrolment, EnrolmentStatus
from training.events.publish import publish
from training.replicas.service import member_key
from training.sessions import repository as sessions_repository
from training.sessions.models import SessionStatus, TrainingSession
from training.sessions.service import SessionNotFound, get_session_in_scope, session_days

QR_ISSUER = "gonghui-training"
QR_TYPE = "checkin"


class SessionNotInProgress(Conflict):
    code = "session_not_in_progress"
    message = "Attendance is taken only while the session is in progress"
    message_zh = "培训班未在进行中，不能签到"


class DayOutsideSession(Unprocessable):
    code = "day_outside_session"
    message = "The day is not one of the session's days"
    message_zh = "该日期不在培训班的培训日期内"


class NotEnrolled(Conflict):
    code = "not_enrolled"
    message = "Only a person enrolled in the session (not waitlisted or cancelled) checks in"
    message_zh = "只有已报名（非候补、未取消）的学员才能签到"


class AlreadyCheckedIn(Conflict):
    code = "already_checked_in"
    message = "This person has already checked in on this day"
    message_zh = "该学员当天已签到"


class InvalidCheckin(Unprocessable):
    code = "invalid_checkin"
    message = "Give exactly one of enrolment_id and member_no, or a qr_token alone"
    message_zh = "请填写报名编号或会员编号之一，或仅提交签到二维码"


class QrTokenExpired(Unprocessable):
    code = "qr_token_expired"
    message = "The check-in QR code has expired; scan the current one"
    message_zh = "签到二维码已过期，请扫描最新的二维码"


class InvalidQrToken(Unprocessable):
    code = "invalid_qr_token"
    message = "This is not a check-in QR code of this session"
    message_zh = "该二维码不是本培训班的签到码"


class QrForMembersOnly(Forbidden):
    message = "Only a member checks in by QR code, as themself"
    message_zh = "只有会员本人可以扫码签到"


# ---------------------------------------------------------------- QR tokens


@dataclass(frozen=True)
class QrSigner:
    """The secret that signs check-in tokens."""

    key: bytes

    @classmethod
    def from_settings(cls, settings: TrainingSettings) -> QrSigner:
        """The configured key, or a generated dev key (refused in production)."""
        if settings.qr_signing_key:
            return cls(settings.qr_signing_key.encode())
        return cls(
            keys.dev_key(
                settings.data_dir, "qr.key", keys.new_secret, production=settings.production
            )
        )

    def issue(
        self, session_id: str, day: date, seconds: int, *, now: datetime | None = None
    ) -> tuple[str, datetime]:
        issued = (now or datetime.now(UTC)).replace(microsecond=0)
        expires_at = issued + timedelta(seconds=seconds)
        claims = {
            "iss": QR_ISSUER,
            "typ": QR_TYPE,
            "sid": session_id,
            "day": day.isoformat(),
            "iat": int(issued.timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        return jwt.encode(claims, self.key, algorithm="HS256"), expires_at

    def read(self, token: str, session_id: str) -> date:
        """The day a valid token of `session_id` checks in for."""
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=["HS256"],
                issuer=QR_ISSUER,
                options={"require": ["iss", "typ", "sid", "day", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            # PyJWT checks the signature first: this was a genuine token, just too old.
            raise QrTokenExpired(details={"field": "qr_token"}) from None
        except jwt.InvalidTokenError:
            raise InvalidQrToken(details={"field": "qr_token"}) from None
        if claims["typ"] != QR_TYPE or claims["sid"] != session_id:
            raise InvalidQrToken(details={"field": "qr_token"})
        try:
            return date.fromisoformat(str(claims["day"]))
        except ValueError:
            raise InvalidQrToken(details={"field": "qr_token"}) from None


def qr_svg(text: str) -> str:
    """`text` as a QR code, an SVG document (vector paths: no imaging library needed)."""
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage)
    svg: str = image.to_string(encoding="unicode")
    return svg


async def checkin_qr(
    session: AsyncSession,
    principal: Principal,
    signer: QrSigner,
    seconds: int,
    session_id: str,
    day: date | None,
) -> CheckinQr:
    """A fresh check-in token for one day of a session in progress, with its QR code."""
    ts = await get_session_in_scope(session, principal, session_id, Action.attendance_write)
    _require_in_progress(ts)
    day = day or today_in_china()
    _require_session_day(ts, day)
    token, expires_at = signer.issue(ts.id, day, seconds)
    return CheckinQr(
        session_id=ts.id, day=day, token=token, expires_at=expires_at, svg=qr_svg(token)
    )


# ---------------------------------------------------------------- checking in


def _require_in_progress(ts: TrainingSession) -> None:
    if ts.status != SessionStatus.in_progress:
        raise SessionNotInProgress(details={"status": ts.status})


def _require_session_day(ts: TrainingSession, day: date) -> None:
    if day not in session_days(ts):
        raise DayOutsideSession(
            details={
                "field": "day",
                "first_day": ts.first_day.isoformat(),
                "last_day": ts.last_day.isoformat(),
            }
        )


def _require_enrolled(enrolment: Enrolment | None, ts: TrainingSession, field: str) -> Enrolment:
    if enrolment is None or enrolment.session_id != ts.id:
        raise NotEnrolled(details={"field": field})
    if enrolment.status != EnrolmentStatus.enrolled:
        raise NotEnrolled(details={"field": field, "status": enrolment.status})
    return enrolment


async def check_in(
    session: AsyncSession,
    principal: Principal,
    signer: QrSigner,
    session_id: str,
    data: AttendanceCreate,
) -> tuple[Attendance, Enrolment]:
    """Record one person-time: staff name the person, or a trainee presents the QR token."""
    if data.qr_token is not None:
        if data.enrolment_id is not None or data.member_no is not None or data.day is not None:
            raise InvalidCheckin(details={"field": "qr_token"})
        return await _check_in_by_qr(session, principal, signer, session_id, data.qr_token)
    ts = await get_session_in_scope(session, principal, session_id, Action.attendance_write)
    if (data.enrolment_id is None) == (data.member_no is None):
        raise InvalidCheckin(details={"field": "enrolment_id"})
    _require_in_progress(ts)
    day = data.day or today_in_china()
    _require_session_day(ts, day)
    if data.enrolment_id is not None:
        found = await enrolments_repository.get(session, data.enrolment_id)
        enrolment = _require_enrolled(found, ts, "enrolment_id")
    else:
        assert data.member_no is not None
        found = await enrolments_repository.of_person(session, ts.id, member_key(data.member_no))
        enrolment = _require_enrolled(found, ts, "member_no")
    return await _record(session, principal, ts, enrolment, day, "staff"), enrolment


async def _check_in_by_qr(
    session: AsyncSession, principal: Principal, signer: QrSigner, session_id: str, token: str
) -> tuple[Attendance, Enrolment]:
    principal.require(Action.attend_self)
    if principal.role is not Role.member or principal.member_no is None:
        raise QrForMembersOnly()
    # No scope check on the host: the member's own enrolment is what entitles them,
    # and a member who has since transferred elsewhere still finishes the session.
    ts = await sessions_repository.get(session, session_id)
    if ts is None:
        raise SessionNotFound()
    day = signer.read(token, ts.id)
    _require_in_progress(ts)
    _require_session_day(ts, day)
    found = await enrolments_repository.of_person(session, ts.id, member_key(principal.member_no))
    enrolment = _require_enrolled(found, ts, "qr_token")
    return await _record(session, principal, ts, enrolment, day, "qr"), enrolment


async def _record(
    session: AsyncSession,
    principal: Principal,
    ts: TrainingSession,
    enrolment: Enrolment,
    day: date,
    method: str,
) -> Attendance:
    record = Attendance(
        id=new_id(),
        session_id=ts.id,
        enrolment_id=enrolment.id,
        day=day,
        method=method,
        host_org_path=ts.host_org_path,
        course_category=ts.course_category,
        person_key=enrolment.person_key,
        worker_category=enrolment.worker_category,
        recorded_by=principal.subject,
        recorded_at=utcnow(),
    )
    # One statement decides, by the unique (enrolment, day) constraint, two scans in the
    # same instant included: no read before it and no savepoint around it (three of a
    # check-in's ten round trips).
    if not await insert_unless_conflicting(session, record):
        raise AlreadyCheckedIn(details={"day": day.isoformat()})
    await publish(
        session,
        Attended(
            attendance_id=record.id,
            session_id=ts.id,
            enrolment_id=enrolment.id,
            host_org_id=ts.host_org_id,
            course_category=ts.course_category,
            person_key=enrolment.person_key,
            member_no=enrolment.member_no,
            worker_category=enrolment.worker_category,
            day=day,
            method=method,
        ),
        aggregate_id=record.id,
        org_path=ts.host_org_path,
    )
    return record


def to_read(record: Attendance, name: str, member_no: str | None) -> AttendanceRead:
    return AttendanceRead(
        id=record.id,
        session_id=record.session_id,
        enrolment_id=record.enrolment_id,
        day=record.day,
        method=record.method,
        person_key=record.person_key,
        member_no=member_no,
        name=name,
        worker_category=record.worker_category,
        recorded_by=record.recorded_by,
        recorded_at=record.recorded_at,
    )
