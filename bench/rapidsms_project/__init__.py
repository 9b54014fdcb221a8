"""The RapidSMS 2.2 peer of bench/e2e.py: a project served by gunicorn from its own virtualenv.

It lives beside the benchmarks, not in demo/, because it runs under RapidSMS's own
dependencies (bench/.rapidsms-venv) and is never imported by smsrouter.
"""
