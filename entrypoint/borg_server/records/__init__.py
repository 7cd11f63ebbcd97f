"""What the server keeps about each client, as typed records and the state file that holds them (the
monitor's findings, compaction, a replica's copy). Every feature may import these; they import only system."""
