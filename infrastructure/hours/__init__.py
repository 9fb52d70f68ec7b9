"""Business hours: when agents answer (``BUSINESS_HOURS``), what the bot says outside them,
the messages customers leave meanwhile, and the notice to agents when hours begin."""
