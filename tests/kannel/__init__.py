"""A real Kannel for tests/test_kannel_real.py: its kannel.conf and the server's settings."""
