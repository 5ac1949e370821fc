"""What happened: the tamper-evident audit chain and the public activity streams."""
