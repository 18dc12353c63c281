"""Shapes of API input and output. No business rules here: services decide."""

from datetime import date, datetime
from typing import Literal

from ninja import Field, Schema
from pydantic import StrictInt, field_validator

from fiscobridge.core.clock import parse_deadline
from fiscobridge.integrations.models import ConnectionTier, ConnectionType
from fiscobridge.pos.models import CertificateDisplayStatus
from fiscobridge.subscriptions.models import Product, Tier

ProductIn = Literal[tuple(Product.values)]
TierIn = Literal[tuple(Tier.values)]


class ErrorBody(Schema):
    code: str
    message: str
    details: dict


class ErrorOut(Schema):
    error: ErrorBody


class KeyIn(Schema):
    key: str = Field(..., max_length=200, description="The key as typed; spaces, dashes and case do not matter")
    product: ProductIn = Field(..., description="The product of the page: a 12-character key without prefix takes it")


class ActivateIn(KeyIn):
    renew: StrictInt | None = Field(
        None, ge=1, description="Start when this subscription ends (an id from renewal_options)"
    )


class RenewalOptionOut(Schema):
    subscription_id: int
    current_expires_at: datetime
    starts_at: datetime
    expires_at: datetime


class PreviewOut(Schema):
    product: str
    tier: str | None
    seats: int
    months: int
    key_hint: str
    starts_at: datetime
    expires_at: datetime
    seats_total_after: int
    renewal_options: list[RenewalOptionOut]


class SubscriptionOut(Schema):
    id: int
    product: str
    tier: str | None
    seats: int
    source: str
    key_hint: str | None
    started_at: datetime
    expires_at: datetime
    status: str


class ActivatedOut(Schema):
    subscription: SubscriptionOut


class SeatsOut(Schema):
    seats_total: int
    seats_used: int


class PosSummaryOut(SeatsOut):
    subscriptions: list[SubscriptionOut]


class TrialOut(SeatsOut):
    invoices_per_month: int


class IntSummaryOut(Schema):
    tiers: dict[str, SeatsOut]
    trial: TrialOut | None
    subscriptions: list[SubscriptionOut]


class SubscriptionsOut(Schema):
    pos: PosSummaryOut
    int: IntSummaryOut


class IssueIn(Schema):
    product: ProductIn
    tier: TierIn | None = None
    seats: StrictInt = Field(..., ge=1, le=1000)
    months: StrictInt = Field(..., ge=1, le=60)
    quantity: StrictInt = Field(..., ge=1, le=10_000)
    reference: str = Field("", max_length=200)
    redeem_by: datetime | date | None = Field(
        None,
        description="Unredeemed keys become unusable from then on: an ISO date-time (UTC if no zone), "
        "or a date, meaning through that day in the partner's time zone",
    )

    @field_validator("redeem_by", mode="before")
    @classmethod
    def _bare_date_stays_a_date(cls, value):
        # A bare date is kept as a date: its end is local midnight in the partner's zone, which
        # the issuing service knows (keys.issuance.redeem_by_moment).
        if isinstance(value, str) and len(value.strip()) == 10:
            try:
                return parse_deadline(value)
            except ValueError:
                raise ValueError("Expected an ISO date (YYYY-MM-DD) or date-time") from None
        return value


class BatchOut(Schema):
    id: int
    product: str
    tier: str | None
    seats: int
    months: int
    quantity: int
    reference: str
    redeem_by: datetime | None
    created_at: datetime


class IssuedKeyOut(Schema):
    id: int
    code: str


class IssuedOut(Schema):
    batch: BatchOut
    keys: list[IssuedKeyOut]


class KeyItemOut(Schema):
    id: int
    hint: str
    product: str
    tier: str | None
    seats: int
    months: int
    status: str
    reference: str
    batch: int
    created_at: datetime
    activated_at: datetime | None
    activated_account: str | None
    revoked_at: datetime | None


class KeyPageOut(Schema):
    items: list[KeyItemOut]
    next_cursor: str | None


class LookupIn(Schema):
    key: str = Field(..., max_length=200)


class RevokeIn(Schema):
    reason: str = Field(..., min_length=1, max_length=500)


# Integrations connections (SPEC 4.2)
ConnectionTypeIn = Literal[tuple(ConnectionType.values)]
ConnectionTierIn = Literal[tuple(ConnectionTier.values)]


class ConnectionIn(Schema):
    type: ConnectionTypeIn
    tier: ConnectionTierIn = Field(
        ..., description="A paid tier with a free seat, or `trial` without a paid subscription"
    )
    name: str = Field(..., min_length=1, max_length=200)


class ConnectionOut(Schema):
    uid: str
    type: str
    tier: str
    name: str
    status: str
    created_at: datetime
    invoices_this_month: int = Field(
        description="Invoices synced this month (the account's local month) on this connection's tier, "
        "by all of the account's connections of the tier, removed ones included"
    )
    invoice_limit: int = Field(
        description="The tier's monthly limit: invoices per connection times the tier's seats "
        "(the trial: 50 while no paid Integrations subscription is active); 0 when the tier is not available"
    )
    can_sync: bool = Field(
        description="Whether usage reports are accepted: the connection is active and its tier (or the trial) "
        "is available to the account (else `usage` answers 403 `no_active_subscription`)"
    )


class ConnectionListOut(Schema):
    items: list[ConnectionOut]


class InvoiceUsageIn(Schema):
    invoices: int = Field(..., strict=True, ge=1, le=1_000_000, description="Invoices synced since the last report")


# Cloud POS certificates (SPEC 4.1)
CertificateStatusIn = Literal[tuple(CertificateDisplayStatus.values)]
EntitlementReason = Literal["ok", "revoked", "certificate_expired", "no_active_subscription", "over_seat_limit"]


class CertificateFilters(Schema):
    taxpayer: str | None = Field(None, max_length=200, description="Case-insensitive part of the taxpayer")
    location: str | None = Field(None, max_length=200, description="Case-insensitive part of the location")
    status: CertificateStatusIn | None = Field(None, description="`expired` = active but past notAfter")


class CertificateOut(Schema):
    uid: str
    taxpayer: str
    location: str
    pac: str
    serial: str
    fingerprint: str = Field(..., description="SHA-256 of the DER certificate, lowercase hex")
    not_after: datetime
    status: CertificateStatusIn
    can_sign: bool


class CertificateListOut(SeatsOut):
    items: list[CertificateOut]


class EntitlementOut(Schema):
    can_sign: bool
    reason: EntitlementReason


class LeaseOut(Schema):
    lease: str = Field(description="Compact JWT (EdDSA, Ed25519): check it with GET /.well-known/jwks.json")
    expires_at: datetime = Field(description="The lease's `exp`, in UTC")
