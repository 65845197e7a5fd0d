from django.contrib import admin

from blog.models import Liveblog, Post


@admin.register(Liveblog)
class LiveblogAdmin(admin.ModelAdmin):
    list_display = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ["liveblog", "body", "created"]
    list_filter = ["liveblog"]
