"""The protocol wing: the only code that touches a socket (session, TLS, SASL, diagnosis)."""
