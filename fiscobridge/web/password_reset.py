"""The "Forgot your password?" form: the same answer, after the same work, for every address
(accounts/password_reset.py), and 429 when an address or an e-mail asks too often."""

from django.contrib.auth.views import PasswordResetView
from django.http import HttpResponseRedirect

from fiscobridge.accounts.password_reset import request_password_reset
from fiscobridge.core.net import client_ip


class ThrottledPasswordResetView(PasswordResetView):
    def form_valid(self, form):
        if not request_password_reset(email=form.cleaned_data["email"], ip=client_ip(self.request)):
            form.add_error("email", "Too many reset requests. Wait an hour, then try again.")
            response = self.form_invalid(form)
            response.status_code = 429
            return response
        return HttpResponseRedirect(self.get_success_url())
