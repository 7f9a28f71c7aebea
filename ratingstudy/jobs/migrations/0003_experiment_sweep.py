# Experiments become sweeps: a grid of train configurations with the configs of the
# generate and evaluate jobs that follow each one. An existing experiment's preset and
# semi_supervised become a one-point grid.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def preset_to_grid(apps, schema_editor):
    Experiment = apps.get_model('jobs', 'Experiment')
    for experiment in Experiment.objects.all():
        experiment.grid = {'preset': [experiment.preset], 'semi_supervised': [experiment.semi_supervised]}
        experiment.save(update_fields=['grid'])


def grid_to_preset(apps, schema_editor):
    Experiment = apps.get_model('jobs', 'Experiment')
    for experiment in Experiment.objects.all():
        experiment.preset = (experiment.grid.get('preset') or ['cyclegan'])[0]
        experiment.semi_supervised = bool((experiment.grid.get('semi_supervised') or [False])[0])
        experiment.save(update_fields=['preset', 'semi_supervised'])


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0002_image_provenance'),
        ('jobs', '0002_job_operate_permission'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='experiment',
            name='grid',
            field=models.JSONField(blank=True, default=dict, help_text='axis -> values; one train job per combination'),
        ),
        migrations.RunPython(preset_to_grid, grid_to_preset),
        migrations.RemoveField(model_name='experiment', name='preset'),
        migrations.RemoveField(model_name='experiment', name='semi_supervised'),
        migrations.AddField(
            model_name='experiment',
            name='description',
            field=models.TextField(blank=True),
        ),
        migrations.AddField(
            model_name='experiment',
            name='input_image_set',
            field=models.ForeignKey(blank=True, help_text='the real set every train job of the grid uses', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='experiments', to='catalog.imageset'),
        ),
        migrations.AddField(
            model_name='experiment',
            name='train_config',
            field=models.JSONField(blank=True, default=dict, help_text='train config shared by every grid point'),
        ),
        migrations.AddField(
            model_name='experiment',
            name='generate_config',
            field=models.JSONField(blank=True, default=dict, help_text='config of the generate job after each train job'),
        ),
        migrations.AddField(
            model_name='experiment',
            name='evaluate_config',
            field=models.JSONField(blank=True, default=dict, help_text='config of the evaluate job after each generate job'),
        ),
        migrations.AddField(
            model_name='experiment',
            name='created_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='experiment',
            name='cancelled_at',
            field=models.DateTimeField(blank=True, help_text='set when cancelled: its chain launches nothing more', null=True),
        ),
    ]
