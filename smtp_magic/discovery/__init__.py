"""The discovery wing: what discover() knows and looks up (provider table, DNS, autoconfig, advice)."""
