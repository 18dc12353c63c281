"""Errors of accounts, users and API tokens."""

from fiscobridge.core.errors import Conflict, PermissionDenied


class EmailTaken(Conflict):
    code = "email_taken"
    message = "A user with this e-mail already exists"


class NotACustomer(PermissionDenied):
    code = "forbidden"
    message = "This action is for customer accounts"


class NotAPartner(PermissionDenied):
    code = "forbidden"
    message = "This action is for partners"
