from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("smsrouter", "0002_send_attempts_and_due_time"),
    ]

    operations = [
        migrations.AlterField(
            model_name="message",
            name="status",
            field=models.CharField(choices=[("received", "Received"), ("handled", "Handled"), ("queued", "Queued"), ("sending", "Sending"), ("sent", "Sent"), ("delivered", "Delivered"), ("failed", "Failed")], max_length=10),
        ),
        migrations.CreateModel(
            name="Lease",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=200, unique=True)),
                ("due_at", models.DateTimeField(help_text="When the job may next be taken.")),
                ("holder", models.CharField(blank=True, help_text="Who took it last.", max_length=100)),
            ],
        ),
    ]
