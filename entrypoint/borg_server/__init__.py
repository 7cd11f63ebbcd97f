"""The Borg Appliance server: one restricted borg serve identity and directory per client, and a monitor."""
