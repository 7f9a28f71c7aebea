from django.contrib import admin

from ratingstudy.catalog.models import Image, ImageSet


@admin.register(ImageSet)
class ImageSetAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "source", "model_name", "image_count", "created_at"]
    list_filter = ["kind", "source"]
    search_fields = ["name", "model_name"]
    readonly_fields = ["created_at", "import_params"]

    @admin.display(description="images")
    def image_count(self, obj: ImageSet) -> int:
        return obj.images.count()


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["source_path", "image_set", "label", "split", "patient_id", "width", "height"]
    list_filter = ["image_set", "label", "split", "magnification"]
    search_fields = ["source_path", "patient_id", "sha256", "original_sha256"]
    raw_id_fields = ["source_image"]
    readonly_fields = [f.name for f in Image._meta.fields]
