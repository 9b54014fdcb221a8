"""The GSM modem bridge, `smsrouter-modem`: a process of its own that owns a modem on a
serial port and speaks HTTP to smsrouter's ModemBackend (docs/backends/modem.md).

Nothing here imports Django, so the bridge runs on the machine the modem is plugged into
with only smsrouter and its `modem` extra installed.
"""
