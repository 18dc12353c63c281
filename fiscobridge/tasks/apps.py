from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "fiscobridge.tasks"
    label = "fiscobridge_tasks"
    verbose_name = "Task queue"
