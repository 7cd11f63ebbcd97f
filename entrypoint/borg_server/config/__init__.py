"""The server's settings: environment variables and BORG_SERVER_CONFIG read into one ServerConfig, every
problem found before anything is changed."""
