from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Staff look; every change goes through a service (and its audit event), never a form."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
