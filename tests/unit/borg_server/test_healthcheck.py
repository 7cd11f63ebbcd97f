"""The server's health check reads the kernel's socket table: sshd listening is healthy, and no connection is made
(a connection every 15 s would write two lines into sshd's log)."""

from borg_server.cli.service import listening

HEADER = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
ROW = "   0: {local} 00000000:0000 {state} 00000000:00000000 00:00000000 00000000     0        0 1234 1\n"


def table(tmp_path, name: str, *sockets: tuple[str, str]):
    path = tmp_path / name
    path.write_text(HEADER + "".join(ROW.format(local=local, state=state) for local, state in sockets))
    return str(path)


def test_a_socket_listening_on_the_port_in_either_table_is_healthy(tmp_path):
    four = table(tmp_path, "tcp", ("00000000:0016", "0A"))
    six = table(tmp_path, "tcp6", ("00000000000000000000000000000000:08AE", "0A"))

    assert listening(22, (four,)) and listening(2222, (str(tmp_path / "absent"), six))


def test_a_connection_on_the_port_or_a_listener_on_another_is_not(tmp_path):
    four = table(tmp_path, "tcp", ("0100007F:0016", "01"), ("00000000:0017", "0A"), ("00000000:1016", "0A"))

    assert not listening(22, (four,))
