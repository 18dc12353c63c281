from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "fiscobridge.tasks"
    label = "fiscobridge_tasks"
    verbose_name = "Task queue"

    def ready(self) -> None:
        from fiscobridge.tasks import run_context  # noqa: F401  (connects the task-run log context)
