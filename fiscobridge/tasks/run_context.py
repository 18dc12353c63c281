"""Each task run gets its own id in the logs, as a request does (core/log_context.py).

Bound when the worker starts a task and dropped when it has finished, through django-tasks'
own signals: the worker loop is the library's, and these are the hooks it offers. Receivers run
in the order they were connected, and the library's own "started" and "finished" log lines are
receivers connected when it is imported; its "started" one is connected again after ours, so
that both lines of a run carry the run's id.
"""

from django.dispatch import receiver
from django_tasks.signals import log_task_started, task_finished, task_started

from fiscobridge.core import log_context


@receiver(task_started, dispatch_uid="fiscobridge.tasks.run_context.started")
def bind_task_run(sender, task_result, **kwargs) -> None:
    log_context.bind(request_id=log_context.new_id(), task_id=str(task_result.id), task=task_result.task.name)


@receiver(task_finished, dispatch_uid="fiscobridge.tasks.run_context.finished")
def unbind_task_run(sender, task_result, **kwargs) -> None:
    log_context.clear()


task_started.disconnect(log_task_started)
task_started.connect(log_task_started)
