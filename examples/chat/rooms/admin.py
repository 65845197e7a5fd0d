from django.contrib import admin

from rooms.models import Message, Room


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ["title", "slug", "staff_only"]
    prepopulated_fields = {"slug": ["title"]}


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["room", "user", "text", "created"]
    list_filter = ["room"]
