"""The task queue: Django's Tasks API (django-tasks on Django 5.2) with the database backend.

Enqueueing inside a transaction, retries with backoff, and the periodic schedule (docs/tasks.md).
"""
