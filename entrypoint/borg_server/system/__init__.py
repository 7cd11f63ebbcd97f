"""The server's own machine: its paths, safe reads and writes of the state volume, the commands it runs,
the clients' Unix accounts and file ownership, SSH keys. Imports nothing else of borg_server."""
