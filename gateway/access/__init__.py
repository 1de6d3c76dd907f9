"""Who may call, and how much: auth and virtual keys, token buckets (``limits``), the
admission of a call against them (``quotas``) and the usage log."""
