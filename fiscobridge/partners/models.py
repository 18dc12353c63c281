from django.conf import settings
from django.db import models

from fiscobridge.core import clock


class IssueFormNonce(models.Model):
    """A one-time token of an issue-keys form as shown to one user.

    Claimed by a DELETE that only one request can win (a row lock on PostgreSQL, the write lock
    on SQLite), so a double click, a reload or two tabs never issue a second batch whose codes
    nobody would see.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=clock.now)

    def __str__(self) -> str:
        return f"Issue form token of user {self.user_id}"
