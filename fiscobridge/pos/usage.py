from fiscobridge.pos.models import Certificate, CertificateStatus


def active_certificate_count(account) -> int:
    """Seats used on Cloud POS: every active certificate holds one, expired or not."""
    return Certificate.objects.filter(account=account, status=CertificateStatus.ACTIVE).count()
