"""Staff roles as Django groups. A staff flag alone opens nothing: what a member may do is the
group's permissions, and which studies they see is the studies they own or collaborate on.

* **Study manager** designs studies, invites raters, reads and exports the results of their studies.
* **Job operator** launches, cancels, resumes and retries jobs, and reads them.
* **Viewer** reads the results of the studies they collaborate on (no export, no changes).
"""

from __future__ import annotations

STUDY_MANAGER = "Study manager"
JOB_OPERATOR = "Job operator"
VIEWER = "Viewer"

#: group -> ``app_label.codename`` permissions.
ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    STUDY_MANAGER: (
        "studies.add_study", "studies.change_study", "studies.view_study",
        "studies.add_rater", "studies.change_rater", "studies.view_rater", "studies.view_session",
        "studies.view_results", "studies.export_results",
        "catalog.view_imageset", "catalog.view_image",
    ),
    JOB_OPERATOR: ("jobs.operate_job", "jobs.view_job", "jobs.add_job", "jobs.change_job", "catalog.view_imageset"),
    VIEWER: ("studies.view_study", "studies.view_results"),
}  # fmt: skip


def role_groups_ensure(**_signal_kwargs) -> None:
    """Create or update the role groups with exactly their permissions (after every migrate)."""
    from django.contrib.auth.models import Group, Permission

    for name, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = []
        for dotted in codenames:
            app_label, codename = dotted.split(".")
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is not None:  # an app not migrated yet gets it on its own migrate
                permissions.append(permission)
        group.permissions.set(permissions)
