"""A replica: the server that copies a primary's committed segments, installs them, keeps tampering out,
raises its own alerts and reports its status."""
