"""The Borg Appliance client sidecar: scheduled borg create of the volumes mounted under /backup."""
