"""Each task run gets its own id in the logs, as a request does (core/log_context.py).

Bound when the worker starts a task and dropped when it has finished, through django-tasks'
own signals: the worker loop is the library's, and these are the hooks it offers. (The
library's "started" line is written by a receiver connected before ours, so it is the one line
of a run without the run's id; its "finished" line has it.)
"""

from django.dispatch import receiver
from django_tasks.signals import task_finished, task_started

from fiscobridge.core import log_context


@receiver(task_started, dispatch_uid="fiscobridge.tasks.run_context.started")
def bind_task_run(sender, task_result, **kwargs) -> None:
    log_context.bind(request_id=log_context.new_id(), task_id=str(task_result.id), task=task_result.task.name)


@receiver(task_finished, dispatch_uid="fiscobridge.tasks.run_context.finished")
def unbind_task_run(sender, task_result, **kwargs) -> None:
    log_context.clear()
