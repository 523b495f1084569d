"""One module per subcommand; runner/cli.py assembles them."""
