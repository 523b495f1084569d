"""One module per verb, ``<verb>_cmd.py``; runner/cli.py loads each on first use. What several
share lives in ``common`` (the pipeline argument, findings, hashing through the store) and
``running`` (what run and replay share); no command imports another."""
