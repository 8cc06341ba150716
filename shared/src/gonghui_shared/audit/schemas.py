"""The audit log as the query endpoint returns it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class AuditEntryRead(BaseModel):
    """One audited request: who, what, when, from where, and whether personal data was shown."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    at: datetime = Field(description="when the request arrived (UTC)")
    request_id: str | None = Field(examples=["3f2c7a0e9b1d4e55"])
    subject: str | None = Field(description="null when no valid token came with the request")
    role: str | None = Field(examples=["county_admin"])
    actor_org_path: str | None = Field(description="the org scope the actor acts in")
    org_path: str | None = Field(
        description="the org acted on when a permission check named one, else the actor's scope"
    )
    method: str = Field(examples=["POST"])
    route: str = Field(examples=["/v1/members/{member_no}/withdraw"])
    path_params: dict[str, str] = Field(examples=[{"member_no": "5309212026000001"}])
    status: int = Field(examples=[200])
    personal_data: bool = Field(description="the response showed personal data unmasked")
    client_addr: str | None = Field(examples=["203.0.113.7"])
