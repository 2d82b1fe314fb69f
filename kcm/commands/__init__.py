"""One module per subcommand: orchestration only, imported when the command runs."""
