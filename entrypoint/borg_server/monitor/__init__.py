"""The monitor: its scan of every client (audit log, segments, manifest, disk), the alerts it raises, its
automatic compaction, repository checks, and the delete review (`borg-server audit`)."""
