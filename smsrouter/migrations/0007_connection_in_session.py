from django.db import migrations, models


def mark_active_sessions(apps, schema_editor):
    """Numbers already in a conversation start with the flag set: from now on the
    conversations app trusts it for each message."""
    try:
        session = apps.get_model("conversations", "Session")
    except LookupError:  # the conversations app is not installed, or not migrated yet
        return
    connection = apps.get_model("smsrouter", "Connection")
    connection.objects.filter(pk__in=session.objects.filter(status="active").values(
        "connection_id")).update(in_session=True)


class Migration(migrations.Migration):

    dependencies = [
        ('smsrouter', '0006_connection_opted_out_at'),
    ]

    operations = [
        migrations.AddField(
            model_name='connection',
            name='in_session',
            field=models.BooleanField(default=False, db_default=False, help_text="Whether the number has an active conversation session (set by smsrouter.contrib.conversations): read back by each inbound message's INSERT, so that a message with none costs no query of the sessions."),
        ),
        migrations.RunPython(mark_active_sessions, migrations.RunPython.noop, elidable=True),
    ]
