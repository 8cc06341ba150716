"""Accounts, tokens, API keys and one-time codes: request and response bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gonghui_shared.permissions import ApiScope, Role


class AccountCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "username": "fengshan_chair",
                    "password": "correct horse battery",
                    "role": "org_chair",
                    "org_id": "0193a1c2-7d1e-7a3b-9c5d-1e2f3a4b5c6d",
                    "phone": "13800138000",
                }
            ]
        }
    )

    username: str = Field(
        min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$", examples=["fengshan_chair"]
    )
    password: str = Field(min_length=10, max_length=128, description="10 to 128 characters")
    role: Role
    org_id: str | None = Field(
        None, description="the org the account acts for (and its subtree); none for platform_admin"
    )
    member_no: str | None = Field(None, max_length=16, description="if the person is a member")
    phone: str | None = Field(None, max_length=40)

    @field_validator("username")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class AccountUpdate(BaseModel):
    """Omit a field to leave it alone. Changing role, org, password or deactivating signs the
    account out everywhere (its refresh tokens and live access tokens are revoked)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"active": False}]})

    active: bool | None = None
    password: str | None = Field(
        None, min_length=10, max_length=128, description="a new password: 10 to 128 characters"
    )
    role: Role | None = None
    org_id: str | None = Field(None, description="the new org; required when the role needs one")


class AccountRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    username: str | None = Field(description="null for a mobile member's account (phone login)")
    role: Role
    org_id: str | None
    org_path: str | None
    member_no: str | None
    phone: str | None = Field(None, description="masked", examples=["138****8000"])
    active: bool
    created_by: str | None
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime


class TokenResponse(BaseModel):
    """RFC 6749 §5.1 access token response."""

    access_token: str
    token_type: str = Field("bearer", examples=["bearer"])
    expires_in: int = Field(description="seconds until the access token expires", examples=[900])
    refresh_token: str


class OtpRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"phone": "13800138000"}]})

    phone: str = Field(min_length=1, max_length=40)


class OtpAccepted(BaseModel):
    """Always the same answer, whether or not the phone belongs to a member."""

    expires_in: int = Field(description="seconds a code stays valid", examples=[300])


class OtpVerify(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"phone": "13800138000", "code": "042917"}]}
    )

    phone: str = Field(min_length=1, max_length=40)
    code: str = Field(pattern=r"^\d{6}$")
    member_no: str | None = Field(
        None,
        max_length=16,
        description="which membership, when several members share this phone (a 409 lists them)",
    )


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "县人社局数据共享平台", "scopes": ["dashboards:read"]}]
        }
    )

    name: str = Field(min_length=1, max_length=100, description="which system uses the key")
    scopes: list[ApiScope] = Field(min_length=1, max_length=len(ApiScope))
    org_id: str | None = Field(
        None, description="the org subtree the key acts in; default the creator's own org"
    )

    @field_validator("scopes")
    @classmethod
    def _distinct(cls, value: list[ApiScope]) -> list[ApiScope]:
        return sorted(set(value))


class ApiKeyRead(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="the secret's first characters, to tell keys apart")
    scopes: list[ApiScope]
    org_id: str
    org_path: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None


class ApiKeyCreated(ApiKeyRead):
    secret: str = Field(
        description="send as the `X-API-Key` header; shown only now, store it safely",
        examples=["ghk_4hW2xq…"],
    )
