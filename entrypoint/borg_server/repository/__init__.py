"""What the server reads in a client's repository without its key: committed segments, the manifest, segment
prints and deletes, the sessions' audit log, free disk space, and the gate between sessions and compaction."""
