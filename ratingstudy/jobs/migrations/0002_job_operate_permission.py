# The "operate_job" permission: launching, cancelling, resuming and retrying jobs
# (and downloading checkpoints, launching and cancelling experiments) require it;
# viewing jobs requires jobs.view_job.

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0001_initial'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='job',
            options={'ordering': ['-created_at'], 'permissions': [('operate_job', 'Can launch, cancel, resume and retry jobs')]},
        ),
    ]
