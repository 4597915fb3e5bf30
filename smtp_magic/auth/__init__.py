"""The credentials wing: where passwords and tokens come from (environment, keyring, prompt)."""
