"""Helpers shared by the server and the client sidecar: settings, logging, subprocesses, reports."""
