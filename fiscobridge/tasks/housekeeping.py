"""The task queue's own upkeep."""

from django.conf import settings
from django.core.management import call_command
from django_tasks import task


@task()
def prune_task_results() -> None:
    """Periodic: delete finished task results after TASKS_KEEP_RESULTS_DAYS (failed ones are
    kept three times as long, for staff to read)."""
    days = settings.TASKS_KEEP_RESULTS_DAYS
    call_command("prune_db_task_results", queue_name="*", min_age_days=days, failed_min_age_days=3 * days, verbosity=0)
