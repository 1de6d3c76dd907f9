"""The response cache: exact and semantic lookups (``response``, ``semantic``) and stream
replay (``stream``)."""
