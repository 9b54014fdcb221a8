"""SMPP 3.4, as much of it as an ESME needs: a PDU codec (`pdu`) and a link (`client`).

Written here rather than taken from a library: the asyncio-native ones on PyPI own the
sending loop behind a queue of their own (aiosmpplib, naz) and the maintained one runs
a tokio runtime in threads (smpp34), while smsrouter needs each submit_sm's answer in
the send() call that made it, in the server's own event loop.
"""
