"""Host side: one model in, a signed self-describing bundle of per-target artifacts out."""
