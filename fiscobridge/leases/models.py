from django.db import models
from django.db.models import Q

from fiscobridge.core import clock


class SigningKeyQuerySet(models.QuerySet):
    def published(self, at=None):
        """The keys a device may need to check a lease: the current one, and retired ones until
        the last lease they can have signed has expired (`published_until`)."""
        moment = at or clock.now()
        return self.filter(Q(retired_at__isnull=True) | Q(published_until__gt=moment)).order_by("-created_at", "-id")


class SigningKey(models.Model):
    """An Ed25519 key that signs offline leases (docs/leases.md). The private key is stored
    encrypted (core.encryption, purpose `lease-signing-key`); the public key is public anyway."""

    kid = models.CharField(max_length=64, unique=True)  # RFC 7638 thumbprint of the public JWK
    public_key = models.BinaryField()  # the raw 32 bytes
    private_key_encrypted = models.BinaryField()  # a Fernet token of the raw 32-byte private key
    created_at = models.DateTimeField(default=clock.now)
    retired_at = models.DateTimeField(null=True, blank=True)
    # Set at retirement: leases it signed may still be valid until then, so the JWKS lists it.
    published_until = models.DateTimeField(null=True, blank=True)
    # True for the one key that signs, NULL once retired: the unique index allows one current key
    # (NULLs never collide), so two processes creating the first key at once cannot both win.
    current = models.BooleanField(null=True, default=True)

    objects = SigningKeyQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["current"], name="signing_key_one_current"),
            models.CheckConstraint(
                name="signing_key_current_or_retired",
                condition=(Q(current=True, retired_at__isnull=True, published_until__isnull=True))
                | (Q(current__isnull=True, retired_at__isnull=False, published_until__isnull=False)),
            ),
        ]

    def __str__(self) -> str:
        return f"signing key {self.kid} ({'current' if self.current else 'retired'})"
