"""The message wing: building and showing messages (compose, templates, previews); no I/O."""
