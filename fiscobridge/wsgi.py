import contextlib
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fiscobridge.settings")
application = get_wsgi_application()


def _load_what_first_requests_would() -> None:
    """Otherwise a process's first request imports the URL configuration, and with it every view,
    router and API schema (2.5 s of CPU here), and its first `reverse()` in each URL namespace
    compiles that namespace's table of URLs (0.18 s in all). gunicorn imports this module once in
    its master (preload_app, gunicorn_conf.py), so every worker, a replaced one included, is
    forked with both done and answers its first request as fast as its thousandth."""
    from django.urls import NoReverseMatch, get_resolver, reverse

    def fill(resolver, namespace: str = "") -> None:
        names = [name for name in resolver.reverse_dict if isinstance(name, str)]  # fills the table
        if namespace and names:
            # A namespaced reverse() compiles its own copy of the table (get_ns_resolver); when
            # the name needs arguments it fails, and the table is compiled all the same.
            with contextlib.suppress(NoReverseMatch):
                reverse(namespace + names[0])
        for inner, (_prefix, included) in resolver.namespace_dict.items():  # the admin's, the API's
            fill(included, f"{namespace}{inner}:")

    fill(get_resolver())


_load_what_first_requests_would()
