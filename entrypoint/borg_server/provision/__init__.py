"""What a start applies: accounts, directories, keys, pairing, authorized_keys, host keys, and the
configuration files of sshd and supervisord."""
