import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("smsrouter", "0008_pending_parts"),
    ]

    operations = [
        migrations.CreateModel(
            name="SubmittedPart",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("number", models.PositiveSmallIntegerField()),
                ("external_id", models.CharField(db_index=True, max_length=255)),
                ("status", models.CharField(choices=[("received", "Received"), ("handled", "Handled"), ("queued", "Queued"), ("sending", "Sending"), ("sent", "Sent"), ("delivered", "Delivered"), ("failed", "Failed")], default="sent", max_length=10)),
                ("message", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="submitted_parts", to="smsrouter.message")),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("message", "number"), name="smsrouter_submittedpart_unique")],
            },
        ),
    ]
