"""Key work for the task queue: the dashboard rollup's pending activations."""

from django_tasks import task

from fiscobridge.keys.rollup import fold_pending


@task()
def fold_dashboard_activations() -> dict:
    """Periodic: add the activations of the last minute to the partner dashboards' counts
    (keys/rollup.py); the dashboards count them meanwhile, so this only keeps their reads short."""
    return {"folded": fold_pending()}
